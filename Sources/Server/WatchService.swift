internal import Foundation
internal import EtcdAPI
internal import GRPCCore
internal import MVCC
internal import Synchronization

/// etcd's Watch service (etcd `api/v3rpc/watch.go`): one bidirectional stream carries many
/// watchers; the hub orders everything the stream sends.
struct WatchService: Etcdserverpb_Watch.ServiceProtocol {
    let hub: WatchHub
    let header: @Sendable () -> HeaderFields
    let auth: Authenticator
    /// Whether the member has had a leader within the last few election timeouts.
    let hasLeader: @Sendable () -> Bool

    func watch(
        request: StreamingServerRequest<Etcdserverpb_WatchRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Etcdserverpb_WatchResponse> {
        // kube-apiserver marks its watches "hasleader": etcd refuses them, and later ends them,
        // when the member has no leader, so that the client moves to another member.
        let requireLeader = request.metadata[stringValues: "hasleader"].contains("true")
        if requireLeader && !hasLeader() {
            return StreamingServerResponse(error: APIError.noLeader.rpcError)
        }
        return StreamingServerResponse { writer in
            let (streamID, wakeups) = hub.openStream()
            defer { hub.closeStream(streamID) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await message in request.messages {
                        switch message.requestUnion {
                        case .createRequest(let create):
                            if let reason = await refusal(of: create) {
                                hub.refuse(reason, on: streamID)
                            } else {
                                hub.create(create, on: streamID)
                            }
                        case .cancelRequest(let cancel): hub.cancel(cancel.watchID, on: streamID)
                        case .progressRequest: hub.requestProgress(on: streamID)
                        case nil: continue
                        }
                    }
                    // A client that has sent all its requests still gets its events: etcd's watch
                    // ends only with the call (etcd's gateway half-closes after the request body).
                    try await Task.sleep(for: .seconds(365 * 24 * 3600))
                }
                group.addTask {
                    for await _ in wakeups {
                        for var response in hub.drain(streamID) {
                            let revision = MVCC.Revision(response.header.revision)
                            header().fill(&response.header, currentRevision: revision)
                            try await writer.write(response)
                        }
                    }
                }
                if requireLeader {
                    group.addTask {
                        while true {
                            try await Task.sleep(for: .milliseconds(500))
                            if !hasLeader() { throw APIError.noLeader.rpcError }
                        }
                    }
                }
                try await group.next()
                group.cancelAll()
            }
            return [:]
        }
    }

    /// etcd's isWatchPermitted, on the key and range end as etcd rewrites them first (an empty
    /// key is "\0"; a "\0" range end, every key from the key on, is checked as the key alone).
    /// The reason is grpc-go's text of etcd's status, as etcd writes it.
    private func refusal(of create: Etcdserverpb_WatchCreateRequest) async -> String? {
        // Not only while authentication is on: a token the member does not know refuses the
        // watch either way, as etcd's AuthInfoFromCtx does.
        guard auth.isEnabled || Credentials.current?.token != nil else { return nil }
        let key = create.key.isEmpty ? Data([0]) : create.key
        let rangeEnd = create.rangeEnd == Data([0]) ? Data() : create.rangeEnd
        do {
            try await auth.checkRead(key: key, rangeEnd: rangeEnd)
            return nil
        } catch {
            let status: RPCError
            switch error {
            case .auth(.invalidToken), .auth(.oldRevision), .auth(.userEmpty): status = error.rpcError
            default: status = AuthError.permissionDenied.rpcError
            }
            return "rpc error: code = \(RequestMetrics.goName(status.code)) desc = \(status.message)"
        }
    }

}
