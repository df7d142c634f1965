internal import GRPCCore
internal import Prometheus
internal import Synchronization

/// go-grpc-prometheus' server counters, as etcd exports them: every RPC started and every RPC
/// handled, by service, method, type and (when handled) status code.
struct RequestMetrics: ServerInterceptor {
    let registry: PrometheusCollectorRegistry
    /// Counter handles by method path and code, each looked up in the registry once: the lookup
    /// builds and hashes the label set, which every RPC would otherwise pay twice.
    private let counters = CounterHandles()

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let method = context.descriptor
        countStarted(method)
        let handled: @Sendable (String) -> Void = { [self] code in countHandled(method, code: code) }
        let response: StreamingServerResponse<Output>
        do {
            response = try await next(request, context)
        } catch {
            handled(Self.goName((error as? RPCError)?.code ?? .unknown))
            throw error
        }
        switch response.accepted {
        case .failure(let error):
            handled(Self.goName(error.code))
            return response
        case .success(var contents):
            let producer = contents.producer
            contents.producer = { writer in
                do {
                    let trailers = try await producer(writer)
                    handled("OK")
                    return trailers
                } catch {
                    handled(Self.goName((error as? RPCError)?.code ?? .unknown))
                    throw error
                }
            }
            return StreamingServerResponse(accepted: .success(contents))
        }
    }

    /// `grpc_server_started_total` for one call: here, and for the calls the client port answers
    /// without grpc-swift (`DirectKVCalls`).
    func countStarted(_ method: MethodDescriptor) {
        counters.counter(method.fullyQualifiedMethod) {
            registry.makeCounter(descriptor: Self.started, labels: Self.labels(method))
        }.increment()
    }

    /// `grpc_server_handled_total` for one call that ended with `code` (Go's name of it).
    func countHandled(_ method: MethodDescriptor, code: String) {
        counters.counter(method.fullyQualifiedMethod + " " + code) {
            registry.makeCounter(descriptor: Self.handled, labels: [("grpc_code", code)] + Self.labels(method))
        }.increment()
    }

    /// One method's started and handled-OK counters, for a caller that knows its methods ahead
    /// (`DirectKVCalls`) and so need not look them up per call.
    struct MethodCounters: Sendable {
        let started: Counter
        let handledOK: Counter
    }

    func counters(for method: MethodDescriptor) -> MethodCounters {
        MethodCounters(
            started: registry.makeCounter(descriptor: Self.started, labels: Self.labels(method)),
            handledOK: registry.makeCounter(descriptor: Self.handled, labels: [("grpc_code", "OK")] + Self.labels(method)))
    }

    private static func labels(_ method: MethodDescriptor) -> [(String, String)] {
        [
            ("grpc_method", method.method),
            ("grpc_service", method.service.fullyQualifiedService),
            ("grpc_type", type(of: method.method)),
        ]
    }

    private static var started: MetricNameDescriptor {
        MetricNameDescriptor(metricName: "grpc_server_started_total", unitName: "", helpText: "Total number of RPCs started on the server.")
    }
    private static var handled: MetricNameDescriptor {
        MetricNameDescriptor(
            metricName: "grpc_server_handled_total", unitName: "",
            helpText: "Total number of RPCs completed on the server, regardless of success or failure.")
    }

    /// The streaming kind of each etcd method kvd serves (all others are unary).
    private static func type(of method: String) -> String {
        switch method {
        case "Watch", "LeaseKeepAlive": "bidi_stream"
        case "Snapshot": "server_stream"
        default: "unary"
        }
    }

    /// Go's `codes.Code.String()`, the label values etcd's dashboards expect.
    static func goName(_ code: RPCError.Code) -> String {
        switch code {
        case .cancelled: "Canceled"
        case .unknown: "Unknown"
        case .invalidArgument: "InvalidArgument"
        case .deadlineExceeded: "DeadlineExceeded"
        case .notFound: "NotFound"
        case .alreadyExists: "AlreadyExists"
        case .permissionDenied: "PermissionDenied"
        case .resourceExhausted: "ResourceExhausted"
        case .failedPrecondition: "FailedPrecondition"
        case .aborted: "Aborted"
        case .outOfRange: "OutOfRange"
        case .unimplemented: "Unimplemented"
        case .internalError: "Internal"
        case .unavailable: "Unavailable"
        case .dataLoss: "DataLoss"
        case .unauthenticated: "Unauthenticated"
        default: "Unknown"
        }
    }
}

/// Counter handles by key, made on first use.
private final class CounterHandles: Sendable {
    private let handles = Mutex<[String: Counter]>([:])

    func counter(_ key: String, make: () -> Counter) -> Counter {
        if let known = handles.withLock({ $0[key] }) { return known }
        let made = make()  // the registry returns the same counter for the same name and labels
        return handles.withLock { handles in
            if let known = handles[key] { return known }
            handles[key] = made
            return made
        }
    }
}
