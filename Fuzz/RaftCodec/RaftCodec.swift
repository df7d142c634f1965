// The Raft codec (`Sources/Raft/Codec.swift`) against any bytes: a message, an entry or a
// configuration change either fails to decode with a `DecodingError` or decodes to a value that
// encodes back to a value that decodes the same (no crash, no trap, no unbounded allocation).
@testable internal import Raft

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let start, count > 0 else { return 0 }
    let bytes = [UInt8](UnsafeRawBufferPointer(start: start, count: count))
    let rest = Array(bytes.dropFirst())
    switch bytes[0] % 3 {
    case 0:
        if let message = try? Message(decoding: rest) {
            let again = try? Message(decoding: message.encoded)
            precondition(again == message, "a decoded message does not survive encoding")
        }
    case 1:
        if let entry = try? Entry(decoding: rest) {
            precondition((try? Entry(decoding: entry.encoded)) == entry, "a decoded entry does not survive encoding")
        }
    default:
        if let change = try? decodeConfChange(rest) {
            precondition((try? decodeConfChange(encodeConfChange(change))) == change, "a decoded conf change does not survive encoding")
        }
    }
    return 0
}
