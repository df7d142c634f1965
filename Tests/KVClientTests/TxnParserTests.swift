// etcdctl's txn input language and pflag-style parsing: tokenising (argify's regular expression), Go's
// Sscanf("%q) %s %q") compare syntax, strconv/time parsers with their error texts, and prefix range ends.
import EtcdAPI
import Foundation
import Testing

@testable import kvctl

@Suite struct TxnParserTests {
    @Test(arguments: [
        (#"put a b"#, ["put", "a", "b"]),
        (#"put "a b" "c\td""#, ["put", "\"a b\"", "\"c\\td\""]),
        (#"put 'x y' z"#, ["put", "'x y'", "z"]),
        (#"put "unterminated x"#, ["put", "unterminated", "x"]),
        (#"  get   k  "#, ["get", "k"]),
    ])
    func tokenize(line: String, words: [String]) {
        #expect(TxnParser.tokenize(Array(line.utf8)).map { String(decoding: $0, as: UTF8.self) } == words)
    }

    @Test func argifyUnquotesAndKeepsTheSingleQuoteSlicingQuirk() throws {
        #expect(try TxnParser.argify(#"put "a\x41" "\u00e9""#) == ["put", "aA", "é"])
        // etcdctl slices a single-quoted word by the number of words: "'abcdef'" among 3 words keeps [1:2], "a".
        #expect(try TxnParser.argify("put 'abcdef' x") == ["put", "a", "x"])
    }

    @Test func parsesCompares() throws {
        let mod = try TxnParser.parseCompare(#"mod("foo") > "3""#)
        #expect(mod.key == Data("foo".utf8))
        #expect(mod.target == .mod)
        #expect(mod.result == .greater)
        #expect(mod.targetUnion == .modRevision(3))
        let value = try TxnParser.parseCompare(#"val("k") != "v w""#)
        #expect(value.targetUnion == .value(Data("v w".utf8)))
        #expect(value.result == .notEqual)
    }

    @Test func malformedComparesReadLikeEtcdctl() {
        #expect(throws: (any Error).self) { try TxnParser.parseCompare("noparen") }
        do {
            _ = try TxnParser.parseCompare(#"mod("foo")="0""#)
            Issue.record("expected an error")
        } catch {
            #expect(error.message == #"malformed comparison: mod("foo")="0"; got mod("foo")  """#)
            #expect(error.code == .invalidInput)
        }
        do {
            _ = try TxnParser.parseCompare(#"mod("foo") = "x""#)
            Issue.record("expected an error")
        } catch {
            #expect(error.message == #"invalid txn compare request: mod("foo") = "x""#)
        }
    }

    @Test func parsesRequests() throws {
        let put = try TxnParser.parseRequest("p k v --prev-kv")
        guard case .requestPut(let request)? = put.request else {
            Issue.record("not a put")
            return
        }
        #expect(request.key == Data("k".utf8))
        #expect(request.prevKv)
        let get = try TxnParser.parseRequest("get a --prefix")
        guard case .requestRange(let range)? = get.request else {
            Issue.record("not a range")
            return
        }
        #expect(range.rangeEnd == Data("b".utf8))
    }

    @Test func goParsers() throws {
        #expect(try GoParse.duration("1m30s") == .seconds(90))
        #expect(try GoParse.duration("1.5s") == .milliseconds(1500))
        #expect(throws: (any Error).self) { try GoParse.duration("5") }
        #expect(try GoParse.int64("0x10", base: 0) == 16)
        #expect(try GoParse.int64("010", base: 0) == 8)
        #expect(try GoParse.int64("-9223372036854775808", base: 10) == Int64.min)
        do {
            _ = try GoParse.int64("zz", base: 16)
            Issue.record("expected an error")
        } catch {
            #expect(error.message == #"strconv.ParseInt: parsing "zz": invalid syntax"#)
        }
    }

    @Test func flagParserFollowsPflag() throws {
        let parser = FlagParser(specs: GetCommand.flags + [GlobalFlags.help] + GlobalFlags.specs)
        let parsed = try parser.parse(["k", "-wjson", "--limit=2", "--prefix", "--", "-x"])
        #expect(parsed.positional == ["k", "-x"])
        #expect(parsed.string("write-out") == "json")
        #expect(parsed.int64("limit") == 2)
        #expect(parsed.bool("prefix"))
        do {
            _ = try parser.parse(["--bogus"])
            Issue.record("expected an error")
        } catch {
            #expect(error.message == "unknown flag: --bogus")
        }
    }

    @Test(arguments: [("abc", "abd"), ("a\u{FF}", "b"), ("\u{FF}\u{FF}", "\0")])
    func prefixEnd(prefix: String, end: String) {
        let bytes = Array(prefix.unicodeScalars.map { UInt8($0.value) })
        #expect(KeyRanges.prefixEnd(bytes) == Array(end.unicodeScalars.map { UInt8($0.value) }))
    }
}
