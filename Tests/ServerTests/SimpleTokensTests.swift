import Foundation
@testable import Server
import Testing

/// etcd's simple tokens: prefix plus applying index, a TTL restarted by every use, dropped with
/// their user or all at once.
@Suite struct SimpleTokensTests {
    @Test func aTokenIsItsPrefixAndTheIndexThatAssignedIt() {
        let tokens = SimpleTokens(ttl: .seconds(300))
        let prefix = SimpleTokens.makePrefix()
        #expect(prefix.count == 16 && prefix.allSatisfy { $0.isLetter && $0.isASCII })
        #expect(SimpleTokens.makePrefix() != prefix)
        tokens.assign(prefix: prefix, index: 42, user: "alice")
        #expect(tokens.token(prefix: prefix) == "\(prefix).42")
        #expect(tokens.user(of: "\(prefix).42") == "alice")
        #expect(tokens.user(of: "\(prefix).43") == nil)
        #expect(SimpleTokens.index(of: "\(prefix).42") == 42)
        #expect(SimpleTokens.index(of: "nodot") == nil && SimpleTokens.index(of: "a.b.1") == nil)
    }

    @Test func anUnusedTokenExpiresAndAUsedOneDoesNot() {
        let tokens = SimpleTokens(ttl: .seconds(300))
        let start = ContinuousClock.now
        tokens.assign(prefix: "used", index: 1, user: "alice", now: start)
        tokens.assign(prefix: "idle", index: 2, user: "bob", now: start)
        for minute in 1...6 {
            #expect(tokens.user(of: "used.1", now: start + .seconds(60 * minute)) == "alice")
        }
        #expect(tokens.user(of: "idle.2", now: start + .seconds(299)) == "bob")  // used: its clock restarts
        #expect(tokens.user(of: "idle.2", now: start + .seconds(299 + 300)) == nil)
        #expect(tokens.user(of: "used.1", now: start + .seconds(360 + 301)) == nil)
    }

    @Test func deletingAUserOrDisablingAuthDropsTokens() {
        let tokens = SimpleTokens(ttl: .seconds(300))
        tokens.assign(prefix: "a", index: 1, user: "alice")
        tokens.assign(prefix: "b", index: 2, user: "bob")
        tokens.invalidate(user: "alice")
        #expect(tokens.user(of: "a.1") == nil && tokens.user(of: "b.2") == "bob")
        tokens.removeAll()
        #expect(tokens.user(of: "b.2") == nil)
    }
}
