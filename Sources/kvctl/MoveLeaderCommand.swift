// `move-leader <transferee-member-id>` (etcdctl move_leader_command.go): finds the leader among the given endpoints
// with Maintenance/Status (the first endpoint whose member reports itself as leader) and asks it to transfer
// leadership, all within one command timeout.

import EtcdAPI
import KVClient

enum MoveLeaderCommand {
    static let flags: [FlagSpec] = []

    static func run(_ flags: ParsedFlags) async {
        guard flags.positional.count == 1 else { exitWithError(.badArgs, "move-leader command needs 1 argument") }
        let targetID: UInt64
        do {
            targetID = try GoParse.uint64(flags.positional[0], base: 16)
        } catch {
            exitWithError(.badArgs, error.message)
        }
        let session = Session.make(flags)
        let deadline = ContinuousClock.now + session.commandTimeout
        var leader: (endpoint: String, id: UInt64)? = nil
        for endpoint in session.endpoints where leader == nil {
            let result = await EndpointCommand.askMember(endpoint, session, timeout: deadline - .now) {
                client, timeout in try await client.status(timeout: timeout)
            }
            switch result {
            case .success(let status):
                if status.header.memberID == status.leader { leader = (endpoint, status.leader) }
            case .failure(let error):
                exitWithError(.error, error.message)
            }
        }
        guard let leader, let configuration = session.configuration(forEndpoint: leader.endpoint) else {
            // Go's %v of a []string.
            exitWithError(.badArgs, "no leader endpoint given at [\(session.endpoints.joined(separator: " "))]")
        }
        let response: Etcdserverpb_MoveLeaderResponse
        switch await Session.attempt(configuration, timeout: deadline - .now, { client, timeout in
            try await client.moveLeader(targetID: targetID, timeout: timeout)
        }) {
        case .success(let moved):
            response = moved
        case .failure(.call(let error)):
            Console.err(EtcdErrors.retryWarning(error, firstEndpoint: Session.targetName(leader.endpoint)))
            exitWithError(.error, EtcdErrors.message(for: error))
        case .failure(.authentication(let error)):
            session.failAuthentication(error)
        case .failure(.setup(let text)):
            exitWithError(.badConnection, text)
        }
        session.display { printer throws(CommandExit) in
            try printer.moveLeader(from: leader.id, to: targetID, response)
        }
    }
}
