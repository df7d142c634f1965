internal import Foundation

enum FileSystem {
    /// Creates `path` and its parents with etcd's data-dir permissions (0700).
    static func createDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(
            atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]
        )
    }
}
