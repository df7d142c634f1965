// `endpoint health|status|hashkv` (etcdctl ep_command.go). Each endpoint is asked on its own connection: health
// with a linearizable Get of "health" (a read that goes through the leader's read index), status and hashkv with
// the Maintenance call. `--cluster` replaces the endpoints by every member's client URLs from MemberList.

import EtcdAPI
import Foundation
import KVClient

enum EndpointCommand {
    static let cluster = FlagSpec(name: "cluster", kind: .bool, defaultValue: "false")
    static let healthFlags: [FlagSpec] = [cluster]
    static let statusFlags: [FlagSpec] = [cluster]
    static let hashKVFlags: [FlagSpec] = [cluster, FlagSpec(name: "rev", kind: .int64, defaultValue: "0")]

    static func health(_ flags: ParsedFlags) async {
        let session = Session.make(flags)
        let endpoints = await endpointsToAsk(session, flags)
        // Checked concurrently and listed in the order the answers come, as etcdctl does.
        let list = await withTaskGroup(of: EndpointHealth.self, returning: [EndpointHealth].self) { group in
            for endpoint in endpoints {
                let configuration = session.configuration(forEndpoint: endpoint)
                let timeout = session.commandTimeout
                group.addTask { await check(endpoint, configuration, timeout: timeout) }
            }
            var list: [EndpointHealth] = []
            for await health in group { list.append(health) }
            return list
        }
        session.display { printer throws(CommandExit) in try printer.endpointHealth(list) }
        if list.contains(where: { !$0.error.isEmpty }) { exitWithError(.error, "unhealthy cluster") }
    }

    /// One endpoint's health: the time a linearizable read takes, or why it failed.
    private static func check(
        _ endpoint: String, _ configuration: EtcdClientConfiguration?, timeout: Duration
    ) async -> EndpointHealth {
        guard let configuration else {
            return EndpointHealth(endpoint: endpoint, isHealthy: false, took: "", error: "bad endpoint \(endpoint)")
        }
        var health = Etcdserverpb_RangeRequest()
        health.key = Data("health".utf8)
        let request = health
        let started = ContinuousClock.now
        let result = await Session.attempt(configuration, timeout: timeout) { client, timeout in
            try await client.range(request, timeout: timeout)
        }
        let took = GoFormat.duration(nanoseconds: nanoseconds(ContinuousClock.now - started))
        switch result {
        case .success:
            return EndpointHealth(endpoint: endpoint, isHealthy: true, took: took, error: "")
        case .failure(.call(let error)):
            Console.err(EtcdErrors.retryWarning(error, firstEndpoint: Session.targetName(endpoint)))
            let message = EtcdErrors.message(for: error)
            // A refused permission still proves the request went through consensus (etcdctl's rule).
            if message == "etcdserver: permission denied" {
                return EndpointHealth(endpoint: endpoint, isHealthy: true, took: took, error: "")
            }
            return EndpointHealth(endpoint: endpoint, isHealthy: false, took: took, error: message)
        case .failure(.authentication(let error)):
            return EndpointHealth(endpoint: endpoint, isHealthy: false, took: "", error: EtcdErrors.message(for: error))
        case .failure(.setup(let text)):
            return EndpointHealth(endpoint: endpoint, isHealthy: false, took: "", error: text)
        }
    }

    static func status(_ flags: ParsedFlags) async {
        let session = Session.make(flags)
        var list: [EndpointStatus] = []
        var failed = false
        for endpoint in await endpointsToAsk(session, flags) {
            switch await askMember(endpoint, session, { client, timeout in try await client.status(timeout: timeout) })
            {
            case .success(let response):
                list.append(EndpointStatus(endpoint: endpoint, response: response))
            case .failure(let error):
                failed = true
                Console.err("Failed to get the status of endpoint \(endpoint) (\(error.message))\n")
            }
        }
        session.display { printer throws(CommandExit) in try printer.endpointStatus(list) }
        // etcdctl exits without an "Error:" line here: the failures were reported above.
        if failed { exit(ExitCode.error.rawValue) }
    }

    static func hashKV(_ flags: ParsedFlags) async {
        let session = Session.make(flags)
        let revision = flags.int64("rev")
        var list: [EndpointHashKV] = []
        var lastError: String? = nil
        for endpoint in await endpointsToAsk(session, flags) {
            let result = await askMember(endpoint, session) { client, timeout in
                try await client.hashKV(revision: revision, timeout: timeout)
            }
            switch result {
            case .success(let response):
                list.append(EndpointHashKV(endpoint: endpoint, response: response))
            case .failure(let error):
                lastError = error.message
                Console.err("Failed to get the hash of endpoint \(endpoint) (\(error.message))\n")
            }
        }
        session.display { printer throws(CommandExit) in try printer.endpointHashKV(list) }
        if let lastError { exitWithError(.error, lastError) }
    }

    /// A Maintenance call to the member at `endpoint` alone; a failure is reported (retry warning) and returned as
    /// etcdctl's error text.
    static func askMember<Response: Sendable>(
        _ endpoint: String, _ session: Session, timeout: Duration? = nil,
        _ body: @escaping @Sendable (EtcdClient, Duration?) async throws -> Response
    ) async -> Result<Response, MemberCallError> {
        guard let configuration = session.configuration(forEndpoint: endpoint) else {
            return .failure(MemberCallError(message: "bad endpoint \(endpoint)"))
        }
        switch await Session.attempt(configuration, timeout: timeout ?? session.commandTimeout, body) {
        case .success(let response):
            return .success(response)
        case .failure(.call(let error)):
            Console.err(EtcdErrors.endpointRetryWarning(error, endpoint: endpoint))
            return .failure(MemberCallError(message: EtcdErrors.message(for: error)))
        case .failure(.authentication(let error)):
            return .failure(MemberCallError(message: EtcdErrors.message(for: error)))
        case .failure(.setup(let text)):
            return .failure(MemberCallError(message: text))
        }
    }

    /// etcdctl's endpointsFromCluster: `--endpoints` as given, or with `--cluster` every member's client URLs.
    static func endpointsToAsk(_ session: Session, _ flags: ParsedFlags) async -> [String] {
        guard flags.bool("cluster") else { return session.endpoints }
        let result = await Session.attempt(session.configuration, timeout: session.commandTimeout) { client, timeout in
            try await client.memberList(timeout: timeout)
        }
        switch result {
        case .success(let response):
            return response.members.flatMap(\.clientUrls)
        case .failure(.call(let error)):
            Console.err(EtcdErrors.retryWarning(error, firstEndpoint: session.firstEndpoint))
            let message = EtcdErrors.message(for: error)
            exitWithError(.error, "failed to fetch endpoints from etcd cluster member list: \(message)")
        case .failure(.authentication(let error)):
            session.failAuthentication(error)
        case .failure(.setup(let text)):
            exitWithError(.error, "failed to fetch endpoints from etcd cluster member list: \(text)")
        }
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// A failed call to one member, as etcdctl words it.
struct MemberCallError: Error {
    var message: String
}
