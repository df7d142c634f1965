// kvctl's output against bytes captured from etcdctl 3.4.23 for the same responses: Go's encoding/json rendering
// of the gogo structs (omitempty, base64, the oneof's Go field names) and Go's %q quoting used by `-w fields`.
import EtcdAPI
import Foundation
import Testing

@testable import kvctl

@Suite struct PrinterTests {
    private func header(revision: Int64) -> Etcdserverpb_ResponseHeader {
        var header = Etcdserverpb_ResponseHeader()
        header.clusterID = 15_118_495_548_433_857_066
        header.memberID = 13_668_033_151_171_901_709
        header.revision = revision
        header.raftTerm = 2
        return header
    }

    private func keyValue(_ key: String, _ value: String, create: Int64, mod: Int64, version: Int64) -> Mvccpb_KeyValue {
        var kv = Mvccpb_KeyValue()
        kv.key = Data(key.utf8)
        kv.value = Data(value.utf8)
        kv.createRevision = create
        kv.modRevision = mod
        kv.version = version
        return kv
    }

    @Test func rangeResponseAsEtcdctlJSON() {
        var response = Etcdserverpb_RangeResponse()
        response.header = header(revision: 2)
        response.kvs = [keyValue("foo", "bar", create: 2, mod: 2, version: 1)]
        response.count = 1
        #expect(
            JSONPrinter.encode(response)
                == #"{"header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":2,"#
                + #""raft_term":2},"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":2,"version":1,"#
                + #""value":"YmFy"}],"count":1}"#)
    }

    @Test func emptyHeaderIsAnEmptyObjectAndAbsentFieldsVanish() {
        var response = Etcdserverpb_DeleteRangeResponse()
        response.header = Etcdserverpb_ResponseHeader()
        #expect(JSONPrinter.encode(response) == #"{"header":{}}"#)
        #expect(JSONPrinter.encode(Etcdserverpb_PutResponse()) == "{}")
    }

    @Test func txnResponseUsesGoFieldNamesForTheOneof() {
        var put = Etcdserverpb_ResponseOp()
        var inner = Etcdserverpb_PutResponse()
        var innerHeader = Etcdserverpb_ResponseHeader()
        innerHeader.revision = 3
        inner.header = innerHeader
        put.response = .responsePut(inner)
        var response = Etcdserverpb_TxnResponse()
        response.succeeded = true
        response.responses = [put]
        #expect(
            JSONPrinter.encode(response)
                == #"{"succeeded":true,"responses":[{"Response":{"ResponsePut":{"header":{"revision":3}}}}]}"#)
    }

    @Test(arguments: [
        ([UInt8]("foo".utf8), #""foo""#),
        ([UInt8]("a \"q\" \\ b".utf8), #""a \"q\" \\ b""#),
        ([0x09, 0x0A, 0x00, 0x7F], #""\t\n\x00\x7f""#),
        ([0xFF, 0x41], #""\xffA""#),
        ([UInt8]("héllo".utf8), #""héllo""#),
        ([0xE2, 0x80, 0x8B], #""\u200b""#),
    ])
    func goQuote(bytes: [UInt8], quoted: String) {
        #expect(GoFormat.quote(bytes) == quoted)
    }
}
