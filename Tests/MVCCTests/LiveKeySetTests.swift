// LiveKeySet against a sorted array: random inserts and removals across chunk splits and
// merges, counts of random ranges, and copies that later changes must not reach.
import MVCC
import Testing

@Suite struct LiveKeySetTests {
    /// A key of the space 0..<space, two bytes big-endian so that byte order is number order.
    private static func key(_ n: Int) -> [UInt8] { [UInt8(n >> 8), UInt8(n & 0xFF)] }

    private static func reference(_ keys: Set<Int>, _ range: KeyRange) -> Int {
        keys.count { range.contains(key($0)) }
    }

    private static func randomRange(_ rng: inout SeededGenerator, space: Int) -> KeyRange {
        let start = key(Int.random(in: 0...space, using: &rng))
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: return .key(start)
        case 1: return .from(start)
        case 2: return .from([])
        default: return .range(start: start, end: key(Int.random(in: 0...space, using: &rng)))
        }
    }

    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func agreesWithASortedArray(seed: UInt64) throws {
        var rng = SeededGenerator(state: seed)
        let space = 6_000
        var set = LiveKeySet()
        var reference = Set<Int>()
        var snapshots: [(LiveKeySet, Set<Int>)] = []
        for step in 0..<40_000 {
            let n = Int.random(in: 0..<space, using: &rng)
            // Mostly inserts at first (chunks split), mostly removals later (chunks merge and empty).
            if Int.random(in: 0..<40_000, using: &rng) > step {
                #expect(set.insert(Self.key(n)) == reference.insert(n).inserted)
            } else {
                #expect(set.remove(Self.key(n)) == (reference.remove(n) != nil))
            }
            if step % 500 == 0 {
                #expect(set.count == reference.count)
                for _ in 0..<20 {
                    let range = Self.randomRange(&rng, space: space)
                    let (got, want) = (set.count(in: range), Self.reference(reference, range))
                    guard got == want else {
                        Issue.record("seed \(seed) step \(step): \(range) counted \(got), want \(want)")
                        return
                    }
                }
                snapshots.append((set, reference))
            }
        }
        // Every copy still counts what it held when it was taken.
        for (copy, held) in snapshots {
            #expect(copy.count == held.count)
            let range = Self.randomRange(&rng, space: space)
            #expect(copy.count(in: range) == Self.reference(held, range))
        }
    }

    @Test func buildsFromSortedKeys() {
        let keys = (0..<1_300).map(Self.key)
        var set = LiveKeySet(sortedKeys: keys)
        #expect(set.count == 1_300)
        #expect(set.count(in: .range(start: Self.key(100), end: Self.key(1_200))) == 1_100)
        #expect(set.contains(Self.key(1_299)) && !set.contains(Self.key(1_300)))
        #expect(set.insert(Self.key(1_300)) && !set.insert(Self.key(5)))
        #expect(set.count(in: .from(Self.key(1_000))) == 301)
    }
}
