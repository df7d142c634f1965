// kvd's settings against any bytes: a command line (first byte even; the arguments are the rest
// split at NUL bytes) through etcd's flag normalisation and ArgumentParser, or an etcd config
// file (first byte odd) through YAML; then either way to a `MemberConfiguration`. Bad settings
// must be refused with an error; nothing may crash or trap. Nothing is started and no file is
// read or written.
internal import ArgumentParser
@testable internal import KVDCommand

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let start, count > 0 else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let rest = Array(bytes.dropFirst())
    if bytes[0] % 2 == 0 {
        let arguments = rest.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        guard let (normalised, _) = try? EtcdFlags.normalise(arguments),
            let command = try? KVD.parseAsRoot(normalised) as? KVD
        else { return 0 }
        _ = try? MemberSettings(flags: command).memberConfiguration()
    } else {
        guard let settings = try? MemberSettings(configText: String(decoding: rest, as: UTF8.self), path: "fuzz.yml") else { return 0 }
        _ = try? settings.memberConfiguration()
    }
    return 0
}
