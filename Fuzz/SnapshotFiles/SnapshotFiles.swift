// The files a member reads that may come from elsewhere, against any bytes: a snapshot image
// received from a peer (`SnapshotImage.install`, first byte even) and an etcd `snapshot.db`
// restored by `kvctl snapshot restore` (`EtcdBackupFile.restore`, first byte odd), each read into
// a real RocksDB in a temporary directory. A damaged file must be refused with an error;
// nothing may crash or trap.
internal import Foundation
@testable internal import Server
internal import Storage

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kvd-fuzz-files-\(getpid())").path
let input = directory + ".input"
let database: Database = {
    do {
        return try Database(path: directory, columnFamilies: Member.columnFamilies)
    } catch {
        fatalError("cannot open the database at \(directory): \(error)")
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let start, count > 0 else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard FileManager.default.createFile(atPath: input, contents: Data(bytes.dropFirst())) else {
        fatalError("cannot write \(input)")
    }
    if bytes[0] % 2 == 0 {
        // Read into a batch that is never written: the database stays as it was.
        try? SnapshotImage.install(from: input, into: WriteBatch(), database: database, families: NodeLoop.stateFamilies)
    } else {
        try? EtcdBackupFile.restore(from: input, into: database)
    }
    return 0
}
