// Client requests as kvd's API edge and applier take them, against any bytes, on a real MVCC
// store (RocksDB in a temporary directory, shared by the inputs of one run so that later inputs
// meet the keys, leases and compactions of earlier ones). The first byte picks the path:
//   0  an entry of the Raft log (`Kvdpb_InternalRequest`): if it is a request the edge lets through
//      (the same `RequestChecks`), applied as the applier applies it;
//   1  a Range: checked, then read from the store;
//   2  a Txn: checked, then read (read-only) or applied.
// A request may be refused with an error; nothing may crash or trap.
internal import EtcdAPI
internal import Foundation
internal import MVCC
@testable internal import Server
internal import Storage
internal import SwiftProtobuf

let store: MVCCStore = {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("kvd-fuzz-requests-\(getpid())").path
    do {
        return try MVCCStore(database: try Database(path: path, columnFamilies: MVCCStore.columnFamilies))
    } catch {
        fatalError("cannot open the store at \(path): \(error)")
    }
}()

/// The write the edge would propose for `request`, or nil when it refuses it.
func admitted(_ request: Kvdpb_InternalRequest) -> WriteRequest? {
    do {
        switch request.request {
        case .put(let put): try RequestChecks.check(put)
        case .deleteRange(let delete): try RequestChecks.check(delete)
        case .txn(let txn): try RequestChecks.check(txn, maxTxnOps: 128)
        case .compaction, .leaseGrant, .leaseRevoke: break
        default: return nil
        }
    } catch {
        return nil
    }
    return WriteRequest(request)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let start, count > 0 else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let body = Data(bytes.dropFirst())
    switch bytes[0] % 3 {
    case 0:
        guard let request = try? Kvdpb_InternalRequest(serializedBytes: body, options: RequestDecoding.options),
            let write = admitted(request)
        else { return 0 }
        _ = store.apply([write], sync: false)
    case 1:
        guard let range = try? Etcdserverpb_RangeRequest(serializedBytes: body, options: RequestDecoding.options),
            (try? RequestChecks.check(range)) != nil
        else { return 0 }
        _ = try? store.readView().range(RangeRequest(range))
    default:
        guard let txn = try? Etcdserverpb_TxnRequest(serializedBytes: body, options: RequestDecoding.options),
            (try? RequestChecks.check(txn, maxTxnOps: 128)) != nil
        else { return 0 }
        let request = TxnRequest(txn)
        if request.isReadOnly {
            _ = try? store.readView().txn(request)
        } else {
            _ = store.apply([.txn(request)], sync: false)
        }
    }
    return 0
}
