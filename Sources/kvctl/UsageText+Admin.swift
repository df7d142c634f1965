// etcdctl 3.4's help text of the version, auth, user and role commands (`etcdctl <command> --help`), printed as cobra prints
// a command's usage.

extension UsageText {
    static let version = [
        "NAME:\n",
        "\tversion - Prints the version of etcdctl\n",
        "\n",
        "USAGE:\n",
        "\tetcdctl version [flags]\n",
        "\n",
        "OPTIONS:\n",
        "  -h, --help[=false]\thelp for version\n",
        "\n",
    ].joined() + globalOptions

    static let auth = [
        "NAME:\n",
        "\tauth - Enable or disable authentication\n",
        "\n",
        "USAGE:\n",
        "\tetcdctl auth <enable or disable> [flags]\n",
        "\n",
        "API VERSION:\n",
        "\t3.4\n",
        "\n",
        "\n",
        "COMMANDS:\n",
        "\tdisable\tDisables authentication\n",
        "\tenable\tEnables authentication\n",
        "\n",
        "OPTIONS:\n",
        "  -h, --help[=false]\thelp for auth\n",
        "\n",
    ].joined() + globalOptions

    static let authEnable = [
        "NAME:\n",
        "\tauth enable - Enables authentication\n",
        "\n",
        "USAGE:\n",
        "\tetcdctl auth enable [flags]\n",
        "\n",
        "OPTIONS:\n",
        "  -h, --help[=false]\thelp for enable\n",
        "\n",
    ].joined() + globalOptions

    static let authDisable = [
        "NAME:\n",
        "\tauth disable - Disables authentication\n",
        "\n",
        "USAGE:\n",
        "\tetcdctl auth disable [flags]\n",
        "\n",
        "OPTIONS:\n",
        "  -h, --help[=false]\thelp for disable\n",
        "\n",
    ].joined() + globalOptions

    static let user = [
        "NAME:\n",
        "\tuser - User related commands\n",
        "\n",
        "USAGE:\n",
        "\tetcdctl user <subcommand> [flags]\n",
        "\n",
        "API VERSION:\n",
        "\t3.4\n",
        "\n",
        "\n",
        "COMMANDS:\n",
        "\tadd\t\tAdds a new user\n",
        "\tdelete\t\tDeletes a user\n",
        "\tget\t\tGets detailed information of a user\n",
        "\tgrant-role\tGrants a role to a user\n",
        "\tlist\t\tLists all users\n",
        "\tpasswd\t\tChanges password of user\n",
        "\trevoke-role\tRevokes a role from a user\n",
        "\n",
        "OPTIONS:\n",
        "  -h, --help[=false]\thelp for user\n",
        "\n",
    ].joined() + globalOptions

    static let userAdd = [
        "NAME:\n",
        "\tuser add - Adds a new user\n",
        "\n",
        "USAGE:\n",
        "\tetcdctl user add <user name or user:password> [options] [flags]\n",
        "\n",
        "OPTIONS:\n",
        "  -h, --help[=false]\t\thelp for add\n",
        "      --interactive[=true]\tRead password from stdin instead of interactive terminal\n",
        "      --new-user-password=\"\"\tSupply password from the command line flag\n",
        "      --no-password[=false]\tCreate a user without password (CN based auth only)\n",
        "\n",
    ].joined() + globalOptions

    static let userDelete = [
        "NAME:\n",
        "\tuser delete - Deletes a user\n",
        "\n",
        "USAGE:\n",
        "\tetcdctl user delete <user name> [flags]\n",
        "\n",
        "OPTIONS:\n",
        "  -h, --help[=false]\thelp for delete\n",
        "\n",
    ].joined() + globalOptions

    static let userGet = [
        "NAME:\n",
        "\tuser get - Gets detailed information of a user\n",
        "\n",
        "USAGE:\n",
        "\tetcdctl user get <user name> [options] [flags]\n",
        "\n",
        "OPTIONS:\n",
        "      --detail[=false]\tShow permissions of roles granted to the user\n",
        "  -h, --help[=false]\thelp for get\n",
        "\n",
    ].joined() + globalOptions

    static let userList = [
        "NAME:\n",
        "\tuser list - Lists all users\n",
        "\n",
        "USAGE:\n",
        "\tetcdctl user list [flags]\n",
        "\n",
        "OPTIONS:\n",
        "  -h, --help[=false]\thelp for list\n",
        "\n",
    ].joined() + globalOptions

    static let userPasswd = [
        "NAME:\n",
        "\tuser passwd - Changes password of user\n",
        "\n",
        "USAGE:\n",
        "\tetcdctl user passwd <user name> [options] [flags]\n",
        "\n",
        "OPTIONS:\n",
        "  -h, --help[=false]\t\thelp for passwd\n",
        "      --interactive[=true]\tIf true, read password from stdin instead of interactive terminal\n",
        "\n",
    ].joined() + globalOptions

    static let userGrantRole = [
        "NAME:\n",
        "\tuser grant-role - Grants a role to a user\n",
        "\n",
        "USAGE:\n",
        "\tetcdctl user grant-role <user name> <role name> [flags]\n",
        "\n",
        "OPTIONS:\n",
        "  -h, --help[=false]\thelp for grant-role\n",
        "\n",
    ].joined() + globalOptions

    static let userRevokeRole = [
        "NAME:\n",
        "\tuser revoke-role - Revokes a role from a user\n",
        "\n",
        "USAGE:\n",
        "\tetcdctl user revoke-role <user name> <role name> [flags]\n",
        "\n",
        "OPTIONS:\n",
        "  -h, --help[=false]\thelp for revoke-role\n",
        "\n",
    ].joined() + globalOptions

    static let role = [
        "NAME:\n",
        "\trole - Role related commands\n",
        "\n",
        "USAGE:\n",
        "\tetcdctl role <subcommand> [flags]\n",
        "\n",
        "API VERSION:\n",
        "\t3.4\n",
        "\n",
        "\n",
        "COMMANDS:\n",
        "\tadd\t\t\tAdds a new role\n",
        "\tdelete\t\t\tDeletes a role\n",
        "\tget\t\t\tGets detailed information of a role\n",
        "\tgrant-permission\tGrants a key to a role\n",
        "\tlist\t\t\tLists all roles\n",
        "\trevoke-permission\tRevokes a key from a role\n",
        "\n",
        "OPTIONS:\n",
        "  -h, --help[=false]\thelp for role\n",
        "\n",
    ].joined() + globalOptions

    static let roleAdd = [
        "NAME:\n",
        "\trole add - Adds a new role\n",
        "\n",
        "USAGE:\n",
        "\tetcdctl role add <role name> [flags]\n",
        "\n",
        "OPTIONS:\n",
        "  -h, --help[=false]\thelp for add\n",
        "\n",
    ].joined() + globalOptions

    static let roleDelete = [
        "NAME:\n",
        "\trole delete - Deletes a role\n",
        "\n",
        "USAGE:\n",
        "\tetcdctl role delete <role name> [flags]\n",
        "\n",
        "OPTIONS:\n",
        "  -h, --help[=false]\thelp for delete\n",
        "\n",
    ].joined() + globalOptions

    static let roleGet = [
        "NAME:\n",
        "\trole get - Gets detailed information of a role\n",
        "\n",
        "USAGE:\n",
        "\tetcdctl role get <role name> [flags]\n",
        "\n",
        "OPTIONS:\n",
        "  -h, --help[=false]\thelp for get\n",
        "\n",
    ].joined() + globalOptions

    static let roleList = [
        "NAME:\n",
        "\trole list - Lists all roles\n",
        "\n",
        "USAGE:\n",
        "\tetcdctl role list [flags]\n",
        "\n",
        "OPTIONS:\n",
        "  -h, --help[=false]\thelp for list\n",
        "\n",
    ].joined() + globalOptions

    static let roleGrantPermission = [
        "NAME:\n",
        "\trole grant-permission - Grants a key to a role\n",
        "\n",
        "USAGE:\n",
        "\tetcdctl role grant-permission [options] <role name> <permission type> <key> [endkey] [flags]\n",
        "\n",
        "OPTIONS:\n",
        "      --from-key[=false]\tgrant a permission of keys that are greater than or equal to the given key using byte compare\n",
        "  -h, --help[=false]\t\thelp for grant-permission\n",
        "      --prefix[=false]\t\tgrant a prefix permission\n",
        "\n",
    ].joined() + globalOptions

    static let roleRevokePermission = [
        "NAME:\n",
        "\trole revoke-permission - Revokes a key from a role\n",
        "\n",
        "USAGE:\n",
        "\tetcdctl role revoke-permission <role name> <key> [endkey] [flags]\n",
        "\n",
        "OPTIONS:\n",
        "      --from-key[=false]\trevoke a permission of keys that are greater than or equal to the given key using byte compare\n",
        "  -h, --help[=false]\t\thelp for revoke-permission\n",
        "      --prefix[=false]\t\trevoke a prefix permission\n",
        "\n",
    ].joined() + globalOptions
}
