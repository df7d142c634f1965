internal import Foundation

enum FileSystem {
    /// Creates `path` and its parents with etcd's data-dir permissions (0700).
    static func createDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(
            atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]
        )
    }

    /// Makes the entries of directory `path` (files created, renamed or removed in it) durable.
    static func syncDirectory(_ path: String) throws {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY)
        guard descriptor >= 0 else { throw ConfigurationError.invalid("open \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw ConfigurationError.invalid("fsync \(path): \(String(cString: strerror(errno)))") }
    }

    /// The bytes an unprivileged writer may still use on the filesystem that holds `path`, or nil
    /// when it cannot be asked.
    static func availableBytes(_ path: String) -> Int? {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return nil }
        return Int(stats.f_bavail) * Int(stats.f_frsize)
    }
}
