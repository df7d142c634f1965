// etcdctl's global flags (ctlv3/ctl.go), their ETCDCTL_* environment fallbacks, and turning them into a client
// configuration with etcdctl's checks and messages (ctlv3/command/global.go).

import EtcdAPI
import Foundation
import KVClient
import Server

enum GlobalFlags {
    /// Every persistent flag of etcdctl's root command, so that each is accepted even where kvctl ignores it.
    static let specs: [FlagSpec] = [
        FlagSpec(name: "endpoints", kind: .stringSlice, defaultValue: "127.0.0.1:2379"),
        FlagSpec(name: "debug", kind: .bool, defaultValue: "false"),
        FlagSpec(name: "write-out", shorthand: "w", kind: .string, defaultValue: "simple"),
        FlagSpec(name: "hex", kind: .bool, defaultValue: "false"),
        FlagSpec(name: "dial-timeout", kind: .duration, defaultValue: "2s"),
        FlagSpec(name: "command-timeout", kind: .duration, defaultValue: "5s"),
        FlagSpec(name: "keepalive-time", kind: .duration, defaultValue: "2s"),
        FlagSpec(name: "keepalive-timeout", kind: .duration, defaultValue: "6s"),
        FlagSpec(name: "insecure-transport", kind: .bool, defaultValue: "true"),
        FlagSpec(name: "insecure-discovery", kind: .bool, defaultValue: "true"),
        FlagSpec(name: "insecure-skip-tls-verify", kind: .bool, defaultValue: "false"),
        FlagSpec(name: "cert", kind: .string, defaultValue: ""),
        FlagSpec(name: "key", kind: .string, defaultValue: ""),
        FlagSpec(name: "cacert", kind: .string, defaultValue: ""),
        FlagSpec(name: "user", kind: .string, defaultValue: ""),
        FlagSpec(name: "password", kind: .string, defaultValue: ""),
        FlagSpec(name: "discovery-srv", shorthand: "d", kind: .string, defaultValue: ""),
        FlagSpec(name: "discovery-srv-name", kind: .string, defaultValue: ""),
    ]

    /// Cobra's per-command help flag.
    static let help = FlagSpec(name: "help", shorthand: "h", kind: .bool, defaultValue: "false")

    /// Applies ETCDCTL_<FLAG> for each global flag not given on the command line (pkg/flags.SetPflagsFromEnv).
    /// Like etcdctl, an unparsable value is ignored.
    static func applyEnvironment(to parsed: inout ParsedFlags) {
        let environment = ProcessInfo.processInfo.environment
        for spec in specs where !parsed.changed.contains(spec.name) {
            let key = "ETCDCTL_" + spec.name.uppercased().replacingOccurrences(of: "-", with: "_")
            guard let text = environment[key],
                let value = try? FlagParser.value(of: spec, from: text, previous: nil)  // ignored, as in etcdctl
            else { continue }
            parsed.values[spec.name] = value
            parsed.changed.insert(spec.name)
        }
    }
}

/// What a command needs to reach the cluster and print, resolved from the global flags.
struct Session {
    /// The client configuration.
    let configuration: EtcdClientConfiguration
    /// `--command-timeout`.
    let commandTimeout: Duration
    /// The chosen printer.
    let printer: any Printer
    /// `--write-out` as given.
    let outputFormat: String
    /// The first endpoint as given, for the retry warning.
    let firstEndpoint: String
    /// `--endpoints` as given, in order (the endpoint commands name each endpoint this way).
    let endpoints: [String]
    /// `--hex`.
    let isHex: Bool

    /// Resolves the global flags the way etcdctl's `mustClientFromCmd` does, exiting with its messages and codes.
    static func make(_ flags: ParsedFlags, valueOnly: Bool = false) -> Session {
        var flags = flags
        GlobalFlags.applyEnvironment(to: &flags)
        let endpoints = Self.discoveredEndpoints(flags) ?? flags.strings("endpoints").map { $0.trimmingCharacters(in: .whitespaces) }
        for name in ["cert", "key", "cacert"] where flags.string(name).isEmpty && flags.changed.contains(name) {
            exitWithError(.badArgs, "empty string is passed to --\(name) option")
        }
        let outputFormat = flags.string("write-out")
        guard
            let printer = OutputFormat.printer(
                named: outputFormat, isHex: flags.bool("hex"), valueOnly: valueOnly)
        else { exitWithError(.badFeature, "unsupported output format") }
        let cert = flags.string("cert")
        let key = flags.string("key")
        let cacert = flags.string("cacert")
        let tls = tlsSettings(cert: cert, key: key, cacert: cacert, skipVerify: flags.bool("insecure-skip-tls-verify"))
        var parsedEndpoints: [EtcdEndpoint] = []
        for text in endpoints {
            guard let endpoint = EtcdEndpoint(parsing: text) else {
                exitWithError(.badConnection, "kvctl: cannot parse endpoint \(GoFormat.quote(text))")
            }
            parsedEndpoints.append(endpoint)
        }
        guard !parsedEndpoints.isEmpty else { exitWithError(.badConnection, "etcdclient: no available endpoints") }
        var configuration = EtcdClientConfiguration(endpoints: parsedEndpoints, tls: tls, dialTimeout: flags.duration("dial-timeout"))
        configuration.credentials = credentials(user: flags.string("user"), password: flags.string("password"))
        // clientv3 logs the refused Authenticate and goes on without a token.
        let target = Self.targetName(endpoints.first ?? "")
        configuration.authenticationNotEnabled = { error in Console.err(EtcdErrors.retryWarning(error, firstEndpoint: target)) }
        return Session(
            configuration: configuration,
            commandTimeout: flags.duration("command-timeout"),
            printer: printer,
            outputFormat: outputFormat,
            firstEndpoint: Self.targetName(endpoints.first ?? ""),
            endpoints: flags.strings("endpoints"),
            isHex: flags.bool("hex"))
    }

    /// etcdctl's `--discovery-srv`: the endpoints the domain's SRV records name, in place of
    /// `--endpoints` when there are any; without `--insecure-discovery`, only the https ones. The
    /// client is given them; the endpoint commands still name `--endpoints`, as etcdctl 3.4's do.
    static func discoveredEndpoints(_ flags: ParsedFlags) -> [String]? {
        let domain = flags.string("discovery-srv")
        guard !domain.isEmpty else { return nil }
        var endpoints: [String]
        do {
            endpoints = try DNSDiscovery.clientEndpoints(domain: domain, serviceName: flags.string("discovery-srv-name"))
        } catch {
            exitWithError(.error, error.description)
        }
        if !flags.bool("insecure-discovery") {
            endpoints = endpoints.filter { endpoint in
                guard endpoint.hasPrefix("http://") else { return true }
                Console.err("ignoring discovered insecure endpoint \(GoFormat.quote(endpoint))\n")
                return false
            }
        }
        return endpoints.isEmpty ? nil : endpoints
    }

    /// etcdctl's authCfgFromCmd: `--user name:password`, `--user name --password pw`, or `--user
    /// name` and the password asked on the terminal.
    static func credentials(user: String, password: String) -> (user: String, password: String)? {
        guard !user.isEmpty else { return nil }
        guard password.isEmpty else { return (user, password) }
        if let colon = user.firstIndex(of: ":") {
            return (String(user[..<colon]), String(user[user.index(after: colon)...]))
        }
        return (user, Password.ask("Password: "))
    }

    /// The configuration for talking to one endpoint only, as etcdctl's per-endpoint clients do; nil when the
    /// endpoint does not parse.
    func configuration(forEndpoint text: String) -> EtcdClientConfiguration? {
        guard let endpoint = EtcdEndpoint(parsing: text.trimmingCharacters(in: .whitespaces)) else { return nil }
        var single = configuration
        single.endpoints = [endpoint]
        return single
    }

    /// TLS when any of --cert/--key/--cacert is set; etcd's TLSInfo checks, in its order.
    static func tlsSettings(cert: String, key: String, cacert: String, skipVerify: Bool)
        -> EtcdClientConfiguration.TLS?
    {
        guard !cert.isEmpty || !key.isEmpty || !cacert.isEmpty else {
            return skipVerify ? EtcdClientConfiguration.TLS(skipServerVerification: true) : nil
        }
        if !cert.isEmpty || !key.isEmpty {
            if cert.isEmpty || key.isEmpty {
                exitWithError(.badArgs, "KeyFile and CertFile must both be present[key: \(key), cert: \(cert)]")
            }
            for path in [cert, key] where !FileManager.default.isReadableFile(atPath: path) {
                exitWithError(.badArgs, "open \(path): no such file or directory")
            }
        }
        if !cacert.isEmpty && !FileManager.default.isReadableFile(atPath: cacert) {
            exitWithError(.badArgs, "open \(cacert): no such file or directory")
        }
        return EtcdClientConfiguration.TLS(
            trustedCAFile: cacert.isEmpty ? nil : cacert,
            certificateFile: cert.isEmpty ? nil : cert,
            keyFile: key.isEmpty ? nil : key,
            skipServerVerification: skipVerify)
    }

    /// clientv3 names its gRPC target after the first endpoint without its scheme.
    static func targetName(_ endpoint: String) -> String {
        for scheme in ["http://", "https://"] where endpoint.hasPrefix(scheme) {
            return String(endpoint.dropFirst(scheme.count))
        }
        return endpoint
    }

    /// Runs one call against the cluster; a failure ends the process as etcdctl's does (warning, "Error: ...", 1).
    func call<Response: Sendable>(
        timeout: Duration?, _ body: @escaping @Sendable (EtcdClient, Duration?) async throws -> Response
    ) async -> Response {
        switch await Self.attempt(configuration, timeout: timeout, body) {
        case .success(let response):
            return response
        case .failure(.call(let error)):
            Console.err(EtcdErrors.retryWarning(error, firstEndpoint: firstEndpoint))
            exitWithError(.error, EtcdErrors.message(for: error))
        case .failure(.authentication(let error)):
            failAuthentication(error)
        case .failure(.setup(let text)):
            exitWithError(.badConnection, text)
        }
    }

    /// etcdctl's client creation failed on its token: the retry warning, the error, exit 2.
    func failAuthentication(_ error: EtcdClientError) -> Never {
        Console.err(EtcdErrors.retryWarning(error, firstEndpoint: firstEndpoint))
        exitWithError(.badConnection, EtcdErrors.message(for: error))
    }

    /// Runs one call with `configuration`, leaving the reporting of a failure to the caller.
    static func attempt<Response: Sendable>(
        _ configuration: EtcdClientConfiguration, timeout: Duration?,
        _ body: @escaping @Sendable (EtcdClient, Duration?) async throws -> Response
    ) async -> Result<Response, CallFailure> {
        do {
            return .success(
                try await EtcdClient.withClient(configuration: configuration) { client in
                    try await body(client, timeout)
                })
        } catch let error as EtcdClientError {
            return .failure(.call(error))
        } catch let failure as AuthenticationFailure {
            return .failure(.authentication(failure.error))
        } catch {
            return .failure(.setup("\(error)"))
        }
    }

    /// Prints with the session's printer; a printer that cannot print ends the process (table: code 4).
    func display(_ print: (any Printer) throws(CommandExit) -> Void) {
        do {
            try print(printer)
        } catch {
            exitWithError(error.code, error.message)
        }
    }
}

/// Why a call failed: the call itself (a gRPC status or a passed deadline), or the client could not be set up.
enum CallFailure: Error {
    case call(EtcdClientError)
    /// etcdctl could not create its client: it had no token for its user.
    case authentication(EtcdClientError)
    case setup(String)
}
