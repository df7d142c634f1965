// Watch service: one bidirectional stream that carries the caller's create, cancel and progress requests and the
// server's responses for every watch on it (clientv3 multiplexes the watches of one context the same way).

public import EtcdAPI
internal import GRPCCore
internal import GRPCNIOTransportHTTP2Posix

/// Sends requests on an open Watch stream.
public struct WatchRequestWriter: Sendable {
    let writer: RPCWriter<Etcdserverpb_WatchRequest>

    public func write(_ request: Etcdserverpb_WatchRequest) async throws {
        try await writer.write(request)
    }
}

extension EtcdClient {
    /// Opens a Watch stream on the first endpoint that can be reached and runs it until `onResponse` returns
    /// false, the server ends the stream (thrown as `unavailable`), or the task is cancelled. `produce` writes the
    /// requests and should not return while the stream is wanted: returning half-closes the stream.
    ///
    /// The stream carries `hasleader=true`, as clientv3.WithRequireLeader (used by etcdctl's watch) sets it: the
    /// member then cancels the stream when it loses its leader instead of leaving the watcher silently stale.
    /// An endpoint that cannot be reached moves the attempt to the next one, with no deadline (a watch waits).
    public func watch(
        produce: @escaping @Sendable (WatchRequestWriter) async throws -> Void,
        onResponse: @escaping @Sendable (Etcdserverpb_WatchResponse) async throws -> Bool
    ) async throws {
        var metadata = Metadata()
        metadata.addString("true", forKey: "hasleader")
        try await call(timeout: nil) { [metadata] connection, options in
            try await Etcdserverpb_Watch.Client(wrapping: connection).watch(
                metadata: metadata,
                options: options,
                requestProducer: { writer in try await produce(WatchRequestWriter(writer: writer)) },
                onResponse: { responses in
                    var received = false
                    do {
                        for try await response in responses.messages {
                            received = true
                            if try await !onResponse(response) { return }
                        }
                    } catch let error as RPCError where received {
                        // The caller has seen events: only it knows the revision to resume from.
                        throw EtcdClientError(error)
                    }
                    throw EtcdClientError(code: .unavailable, message: "etcdserver: server stopped")
                })
        }
    }
}
