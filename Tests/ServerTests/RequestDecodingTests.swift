// Client requests decoded as etcd's grpc-go decodes them: its size limit and status, its
// unmarshalling status, and no depth limit short of a deeply nested Txn.
import EtcdAPI
import Foundation
import GRPCCore
import SwiftProtobuf
import Testing
@testable import Server

@Suite struct RequestDecodingTests {
    private let deserializer = EtcdRequestDeserializer<Etcdserverpb_TxnRequest>()

    private func nested(_ depth: Int) -> Etcdserverpb_TxnRequest {
        var request = Etcdserverpb_TxnRequest()
        request.success = [.with { $0.requestPut = .with { $0.key = Data("k".utf8) } }]
        for _ in 1..<depth {
            let inner = request
            request = .with { $0.success = [.with { $0.requestTxn = inner }] }
        }
        return request
    }

    @Test func aTxnNestedFiftyDeepIsDecoded() throws {
        let bytes: [UInt8] = try nested(50).serializedBytes()
        // Swift Protobuf's default depth limit refuses it.
        #expect(throws: BinaryDecodingError.self) { try Etcdserverpb_TxnRequest(serializedBytes: bytes) }
        #expect(try deserializer.deserialize(bytes) == nested(50))
        // A Raft entry wraps it once more.
        var entry = Kvdpb_InternalRequest()
        entry.txn = nested(50)
        let entryBytes: [UInt8] = try entry.serializedBytes()
        #expect(try Kvdpb_InternalRequest(serializedBytes: entryBytes, options: RequestDecoding.options) == entry)
    }

    @Test func aRequestAboveTheLimitGetsGrpcGosStatus() throws {
        // The value every member of this process sets (--max-request-bytes' default + 512 KiB).
        RequestDecoding.messageBytesMax = 2_097_152
        var request = Etcdserverpb_TxnRequest()
        request.success = [.with { $0.requestPut = .with { $0.key = Data("k".utf8); $0.value = Data(count: 3 * 1024 * 1024) } }]
        let bytes: [UInt8] = try request.serializedBytes()
        do {
            _ = try deserializer.deserialize(bytes)
            Issue.record("a request of \(bytes.count) bytes was decoded")
        } catch let error as RPCError {
            #expect(error.code == .resourceExhausted)
            #expect(error.message == "grpc: received message larger than max (\(bytes.count) vs. 2097152)")
        }
    }

    @Test func aTruncatedRequestGetsGrpcGosStatus() throws {
        do {
            _ = try deserializer.deserialize([0x12, 0x10, 0x0A] as [UInt8])
            Issue.record("a truncated request was decoded")
        } catch let error as RPCError {
            #expect(error.code == .internalError)
            #expect(error.message == "grpc: error unmarshalling request: unexpected EOF")
        }
    }
}

/// The client port tells gRPC calls from its HTTP handlers as etcd does: the content type contains
/// `application/grpc` anywhere.
@Suite struct GRPCContentTypeTests {
    @Test(arguments: [
        ("application/grpc", true), ("application/grpc+proto", true), ("text/x-application/grpc", true),
        ("application/json", false), ("application/grp", false), ("", false), ("APPLICATION/GRPC", false),
    ])
    func contentType(_ value: String, isGRPC: Bool) {
        #expect(DirectKVCalls.isGRPC(contentType: value) == isGRPC)
    }

    @Test func noContentTypeIsNotGRPC() {
        #expect(!DirectKVCalls.isGRPC(contentType: nil))
    }
}
