// etcdctl's txn input language (txn_command.go, util.go argify): compares like `mod("k") > "3"` and requests like
// `put k v`, with etcdctl's messages, exit codes and quirks (noted where they are deliberate).

import EtcdAPI
import Foundation

enum TxnParser {
    // MARK: Compares

    /// parseCompare: `<target>("<key>") <op> "<value>"`.
    static func parseCompare(_ line: String) throws(CommandExit) -> Etcdserverpb_Compare {
        guard let paren = line.firstIndex(of: "(") else {
            throw CommandExit(.invalidInput, "malformed comparison: \(line)")
        }
        let target = String(line[..<paren])
        var scanner = GoScanner(Array(line[line.index(after: paren)...].utf8))
        let scan = scanner.scanCompare()
        guard scan.count == 3 else {
            throw CommandExit(
                .invalidInput,
                "malformed comparison: \(line); got \(target)(\(GoFormat.quote(scan.key))) \(scan.op) "
                    + GoFormat.quote(scan.value))
        }
        var compare = Etcdserverpb_Compare()
        compare.key = Data(scan.key)
        let number = { () throws(CommandExit) -> Int64 in
            guard let text = String(bytes: scan.value, encoding: .utf8),
                let value = try? GoParse.int64(text, base: 10)  // any failure is the one message below
            else { throw CommandExit(.invalidInput, "invalid txn compare request: \(line)") }
            return value
        }
        switch target {
        case "ver", "version":
            let value = try number()
            compare.result = result(scan.op)
            compare.target = .version
            compare.targetUnion = .version(value)
        case "c", "create":
            let value = try number()
            compare.result = result(scan.op)
            compare.target = .create
            compare.targetUnion = .createRevision(value)
        case "m", "mod":
            let value = try number()
            compare.result = result(scan.op)
            compare.target = .mod
            compare.targetUnion = .modRevision(value)
        case "val", "value":
            compare.result = result(scan.op)
            compare.target = .value
            compare.targetUnion = .value(Data(scan.value))
        case "lease":
            // etcdctl 3.4 hands the value to clientv3.Compare as a string, which panics ("bad value").
            _ = result(scan.op)
            goPanic("bad value")
        default:
            throw CommandExit(.invalidInput, "malformed comparison: \(line) (unknown target \(target))")
        }
        return compare
    }

    /// clientv3.Compare's operators; anything else panics in etcdctl.
    private static func result(_ op: String) -> Etcdserverpb_Compare.CompareResult {
        switch op {
        case "=": .equal
        case "!=": .notEqual
        case ">": .greater
        case "<": .less
        default: goPanic("Unknown result op")
        }
    }

    // MARK: Requests

    /// parseRequestUnion: a put, get or del line, parsed with those commands' own flags and checks.
    static func parseRequest(_ line: String) throws(CommandExit) -> Etcdserverpb_RequestOp {
        let arguments = try argify(line)
        guard arguments.count >= 2 else { throw CommandExit(.invalidInput, "invalid txn compare request: \(line)") }
        let invalid = CommandExit(.invalidInput, "invalid txn request: \(line)")
        // Cobra's prefix matching over the three commands of etcdctl's inner command tree.
        let names = ["del", "get", "put"]
        let name = names.contains(arguments[0]) ? arguments[0] : {
            let matches = names.filter { $0.hasPrefix(arguments[0]) }
            return matches.count == 1 ? matches[0] : ""
        }()
        var rest = arguments
        rest.remove(at: 0)
        var request = Etcdserverpb_RequestOp()
        switch name {
        case "put":
            let flags = try innerFlags(rest, PutCommand.flags, usage: UsageText.txnPut, invalid: invalid)
            // etcdctl would read the value from its already-buffered stdin here, which yields nothing.
            request.request = .requestPut(PutCommand.makeRequest(flags, readStdin: { Data() }))
        case "get":
            let flags = try innerFlags(rest, GetCommand.flags, usage: UsageText.txnGet, invalid: invalid)
            request.request = .requestRange(GetCommand.makeRequest(flags))
        case "del":
            let flags = try innerFlags(rest, DelCommand.flags, usage: UsageText.txnDel, invalid: invalid)
            request.request = .requestDeleteRange(DelCommand.makeRequest(flags))
        default:
            throw invalid
        }
        return request
    }

    /// The flags of a txn line's command. On a flag error cobra prints its default usage to stderr (etcdctl's inner
    /// command tree has no usage function of its own) and etcdctl reports only the line.
    private static func innerFlags(
        _ arguments: [String], _ specs: [FlagSpec], usage: String, invalid: CommandExit
    ) throws(CommandExit) -> ParsedFlags {
        do {
            return try FlagParser(specs: specs + [GlobalFlags.help]).parse(arguments)
        } catch {
            Console.err(usage)
            throw invalid
        }
    }

    /// argify: splits a line into words: "double quoted" (Go escapes), 'single quoted', or bare.
    static func argify(_ line: String) throws(CommandExit) -> [String] {
        let tokens = tokenize(Array(line.utf8))
        var arguments: [String] = []
        for token in tokens {
            if token.first == UInt8(ascii: "'") {
                // NB: etcdctl slices by the number of words, not the word's length (`args[i][1 : len(args)-1]`);
                // kvctl keeps that, and its panic when the slice is out of bounds.
                let high = tokens.count - 1
                guard high >= 1, high <= token.count else {
                    goPanic("runtime error: slice bounds out of range [1:\(high)]")
                }
                arguments.append(String(decoding: token[1..<high], as: UTF8.self))
            } else if token.first == UInt8(ascii: "\"") {
                var scanner = GoScanner(token)
                guard case .success(let value) = scanner.quotedString() else {
                    throw CommandExit(.invalidInput, "invalid syntax")
                }
                arguments.append(String(decoding: value, as: UTF8.self))
            } else {
                arguments.append(String(decoding: token, as: UTF8.self))
            }
        }
        return arguments
    }

    /// The words of `"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s]\S*[^'"\s]?`, leftmost first.
    static func tokenize(_ bytes: [UInt8]) -> [[UInt8]] {
        let quote = UInt8(ascii: "\""), apostrophe = UInt8(ascii: "'"), backslash = UInt8(ascii: "\\")
        let isSpace = { (byte: UInt8) in byte == 0x20 || (0x09...0x0D).contains(byte) && byte != 0x0B }
        var tokens: [[UInt8]] = []
        var index = 0
        scan: while index < bytes.count {
            let byte = bytes[index]
            if byte == quote {
                var end = index + 1
                while end < bytes.count {
                    if bytes[end] == backslash, end + 1 < bytes.count, bytes[end + 1] != 0x0A {
                        end += 2
                    } else if bytes[end] == backslash {
                        break
                    } else if bytes[end] == quote {
                        tokens.append(Array(bytes[index...end]))
                        index = end + 1
                        continue scan
                    } else {
                        end += 1
                    }
                }
            } else if byte == apostrophe {
                if let close = bytes[(index + 1)...].firstIndex(of: apostrophe) {
                    tokens.append(Array(bytes[index...close]))
                    index = close + 1
                    continue scan
                }
            } else if !isSpace(byte) {
                var end = index + 1
                while end < bytes.count && !isSpace(bytes[end]) { end += 1 }
                tokens.append(Array(bytes[index..<end]))
                index = end
                continue scan
            }
            index += 1
        }
        return tokens
    }
}

/// The part of Go's fmt scanner that `Sscanf(s, "%q) %s %q", ...)` uses.
struct GoScanner {
    /// The input.
    let bytes: [UInt8]
    /// Read position. Invariant: position <= bytes.count.
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    enum ScanFailure: Error { case failed }

    /// Sscanf "%q) %s %q": how many of the three values were read, and those values.
    mutating func scanCompare() -> (count: Int, key: [UInt8], op: String, value: [UInt8]) {
        var result = (count: 0, key: [UInt8](), op: "", value: [UInt8]())
        guard case .success(let key) = quoted() else { return result }
        result = (1, key, "", [])
        guard position < bytes.count, bytes[position] == UInt8(ascii: ")") else { return result }
        position += 1
        // A space in a Go scan format needs at least one space in the input.
        guard position == bytes.count || Self.isSpace(bytes[position]) else { return result }
        skipSpaces()
        guard position < bytes.count else { return result }
        let start = position
        while position < bytes.count && !Self.isSpace(bytes[position]) { position += 1 }
        result.op = String(decoding: bytes[start..<position], as: UTF8.self)
        result.count = 2
        skipSpaces()
        guard case .success(let value) = quoted() else { return result }
        result.value = value
        result.count = 3
        return result
    }

    private mutating func quoted() -> Result<[UInt8], ScanFailure> {
        skipSpaces()
        return quotedString()
    }

    /// fmt's quotedString: a back-quoted raw string, or a double-quoted one unquoted by strconv.Unquote's rules.
    mutating func quotedString() -> Result<[UInt8], ScanFailure> {
        guard position < bytes.count else { return .failure(.failed) }
        let open = bytes[position]
        position += 1
        if open == UInt8(ascii: "`") {
            guard let close = bytes[position...].firstIndex(of: open) else { return .failure(.failed) }
            defer { position = close + 1 }
            return .success(Array(bytes[position..<close]))
        }
        guard open == UInt8(ascii: "\"") else { return .failure(.failed) }
        let start = position
        while true {
            guard position < bytes.count else { return .failure(.failed) }
            let byte = bytes[position]
            position += 1
            if byte == UInt8(ascii: "\\") {
                guard position < bytes.count else { return .failure(.failed) }
                position += 1
            } else if byte == UInt8(ascii: "\"") {
                break
            }
        }
        return Self.unquote(Array(bytes[start..<(position - 1)]))
    }

    private mutating func skipSpaces() {
        while position < bytes.count && Self.isSpace(bytes[position]) { position += 1 }
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) }

    /// strconv.Unquote of a double-quoted string's body.
    static func unquote(_ body: [UInt8]) -> Result<[UInt8], ScanFailure> {
        var output: [UInt8] = []
        var index = 0
        func hexValue(_ count: Int) -> UInt32? {
            guard index + count <= body.count else { return nil }
            var value: UInt32 = 0
            for byte in body[index..<(index + count)] {
                guard let digit = Character(Unicode.Scalar(byte)).hexDigitValue else { return nil }
                value = value * 16 + UInt32(digit)
            }
            index += count
            return value
        }
        while index < body.count {
            let byte = body[index]
            index += 1
            if byte == 0x0A || byte == UInt8(ascii: "\"") { return .failure(.failed) }
            guard byte == UInt8(ascii: "\\") else {
                output.append(byte)
                continue
            }
            guard index < body.count else { return .failure(.failed) }
            let escape = body[index]
            index += 1
            switch escape {
            case UInt8(ascii: "a"): output.append(0x07)
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "v"): output.append(0x0B)
            case UInt8(ascii: "\\"), UInt8(ascii: "\""): output.append(escape)
            case UInt8(ascii: "x"):
                guard let value = hexValue(2) else { return .failure(.failed) }
                output.append(UInt8(value))
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                guard index + 2 <= body.count else { return .failure(.failed) }
                var value = UInt32(escape - UInt8(ascii: "0"))
                for digit in body[index..<(index + 2)] {
                    guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(digit) else { return .failure(.failed) }
                    value = value * 8 + UInt32(digit - UInt8(ascii: "0"))
                }
                index += 2
                guard value <= 255 else { return .failure(.failed) }
                output.append(UInt8(value))
            case UInt8(ascii: "u"), UInt8(ascii: "U"):
                guard let value = hexValue(escape == UInt8(ascii: "u") ? 4 : 8), let scalar = Unicode.Scalar(value)
                else { return .failure(.failed) }
                output.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                return .failure(.failed)
            }
        }
        return .success(output)
    }
}
