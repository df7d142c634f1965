// The JSON gateway's pieces that do not need a member: cutting a request body into JSON values
// however it is split into reads, the route table, and grpc-gateway's statuses and error bodies.
// The gateway end to end, beside etcd 3.4, is Tests/Cluster/gateway.sh.
import GRPCCore
@testable import Server
import Testing

@Suite struct JSONGatewayTests {
    static let body = #" {"create_request":{"key":"e30=","x":"a \"}\" b\\"}}"# + "\n"
        + #"{"cancel_request":{"watch_id":"1"}}[1,[2]]"string"  true {"k":{}}"#

    static let values = [
        #"{"create_request":{"key":"e30=","x":"a \"}\" b\\"}}"#, #"{"cancel_request":{"watch_id":"1"}}"#,
        "[1,[2]]", #""string""#, "true", #"{"k":{}}"#,
    ]

    @Test(arguments: [1, 2, 3, 7, 1_000])
    func aBodyIsCutIntoItsValuesWhateverTheReads(readSize: Int) {
        var splitter = JSONValueSplitter()
        var values: [String] = []
        let bytes = Array(Self.body.utf8)
        var start = 0
        while start < bytes.count {
            let end = min(start + readSize, bytes.count)
            values += splitter.feed(bytes[start..<end]).map { String(decoding: $0, as: UTF8.self) }
            start = end
        }
        if let rest = splitter.finish() { values.append(String(decoding: rest, as: UTF8.self)) }
        #expect(values == Self.values)
    }

    @Test func anUnfinishedValueIsWhatRemainsAtTheEnd() {
        var splitter = JSONValueSplitter()
        #expect(splitter.feed(Array(#"{"key":"a"} {"key":"#.utf8)).map { String(decoding: $0, as: UTF8.self) } == [#"{"key":"a"}"#])
        #expect(splitter.finish().map { String(decoding: $0, as: UTF8.self) } == #"{"key":"#)
        #expect(splitter.finish() == nil)
    }

    @Test func routesFollowEtcdsPaths() {
        #expect(JSONGateway.route(method: "POST", path: "/v3/kv/range").map(\.streamsResponses) == .success(false))
        #expect(JSONGateway.route(method: "POST", path: "/v3beta/watch").map(\.streamsResponses) == .success(true))
        #expect(JSONGateway.route(method: "POST", path: "/v3/kv/lease/timetolive").map(\.streamsResponses) == .success(false))
        #expect(JSONGateway.route(method: "GET", path: "/v3/kv/put").map(\.streamsResponses) == .failure(.methodNotAllowed))
        #expect(JSONGateway.route(method: "POST", path: "/v3/kv/nope").map(\.streamsResponses) == .failure(.notFound))
        #expect(JSONGateway.route(method: "POST", path: "/v3alpha/kv/range").map(\.streamsResponses) == .failure(.notGateway))
        #expect(JSONGateway.route(method: "GET", path: "/health").map(\.streamsResponses) == .failure(.notGateway))
    }

    @Test func errorsLookLikeGrpcGateways() {
        let error = RPCError(code: .outOfRange, message: "etcdserver: mvcc: required revision is a future revision")
        #expect(JSONGateway.httpStatus(error.code) == 400)
        #expect(JSONGateway.httpStatus(.notFound) == 404)
        #expect(JSONGateway.httpStatus(.unavailable) == 503)
        #expect(JSONGateway.httpStatus(.failedPrecondition) == 412)
        #expect(String(decoding: JSONGateway.errorBody(error), as: UTF8.self)
            == #"{"error":"etcdserver: mvcc: required revision is a future revision","message":"etcdserver: mvcc: required revision is a future revision","code":11}"#)
        let quoted = RPCError(code: .invalidArgument, message: "a \"quoted\"\nline")
        #expect(String(decoding: JSONGateway.streamErrorLine(quoted), as: UTF8.self)
            == #"{"error":{"grpc_code":3,"http_code":400,"message":"a \"quoted\"\nline","http_status":"Bad Request"}}"# + "\n")
    }
}
