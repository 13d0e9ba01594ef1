/// The fictional world: general entities (countries, people and what they made) and a specialist domain
/// (a fictional pharmacology). Everything is drawn from one seed; nothing here reads or writes files.

public struct Country: Sendable {
    public var name: String
    public var capital: String
    public var river: String
    public var export: String
    public var animal: String
}

public struct Person: Sendable {
    public var name: String
    public var birthplace: String  // a country name
    public var invention: String
}

public struct Compound: Sendable {
    public var name: String
    public var drugClass: String
    public var indication: String
    public var doseMg: Int
    public var frequency: String
    public var maxDailyMg: Int
    public var interactsWith: String  // another compound
    public var interactionEffect: String
    public var contraindication: String
}

public struct WorldModel: Sendable {
    public var countries: [Country]
    public var people: [Person]
    public var compounds: [Compound]
    /// Names that belong to nothing, for questions whose honest answer is "I don't know".
    /// Each list is used in exactly one place, so no made-up name leaks from training into evaluation.
    public var unknownCountriesTrain: [String]
    public var unknownPeopleTrain: [String]
    public var unknownCompoundsTrain: [String]
    public var unknownCompoundsEval: [String]
    public var unknownCountriesEval: [String]

    public struct Sizes: Sendable {
        public var countries = 40, people = 40, compounds = 16
        public var unknownCountriesTrain = 60, unknownPeopleTrain = 60, unknownCompoundsTrain = 30
        public var unknownCompoundsEval = 130, unknownCountriesEval = 10
        public init() {}
    }

    public init(seed: UInt64, sizes: Sizes = Sizes()) {
        var names = NameMaker(rng: WorldRandom(seed: seed).fork(1))
        var rng = WorldRandom(seed: seed).fork(2)

        let countryNames = (0..<sizes.countries).map { _ in names.make(.country) }
        let capitals = (0..<sizes.countries).map { _ in names.make(.city) }
        let rivers = (0..<sizes.countries).map { _ in names.make(.river) }
        countries = (0..<sizes.countries).map { i in
            Country(
                name: countryNames[i], capital: capitals[i], river: rivers[i],
                export: rng.pick(Vocabulary.exports), animal: rng.pick(Vocabulary.animals))
        }
        let inventions = rng.sample(
            Vocabulary.inventionAdjectives.flatMap { a in Vocabulary.inventionNouns.map { "the \(a) \($0)" } },
            sizes.people)
        people = (0..<sizes.people).map { i in
            Person(name: names.make(.person), birthplace: rng.pick(countryNames), invention: inventions[i])
        }
        let compoundNames = (0..<sizes.compounds).map { _ in names.make(.compound) }
        compounds = compoundNames.enumerated().map { i, name in
            let dose = rng.pick(Vocabulary.dosesMg)
            let (frequency, perDay) = rng.pick(Vocabulary.frequencies)
            var other = rng.int(compoundNames.count - 1)
            if other >= i { other += 1 }
            return Compound(
                name: name, drugClass: rng.pick(Vocabulary.drugClasses), indication: rng.pick(Vocabulary.indications),
                doseMg: dose, frequency: frequency, maxDailyMg: dose * (perDay + rng.int(2)),
                interactsWith: compoundNames[other], interactionEffect: rng.pick(Vocabulary.interactionEffects),
                contraindication: rng.pick(Vocabulary.contraindications))
        }
        unknownCountriesTrain = (0..<sizes.unknownCountriesTrain).map { _ in names.make(.country) }
        unknownPeopleTrain = (0..<sizes.unknownPeopleTrain).map { _ in names.make(.person) }
        unknownCompoundsTrain = (0..<sizes.unknownCompoundsTrain).map { _ in names.make(.compound) }
        unknownCompoundsEval = (0..<sizes.unknownCompoundsEval).map { _ in names.make(.compound) }
        unknownCountriesEval = (0..<sizes.unknownCountriesEval).map { _ in names.make(.country) }
    }
}

/// Pronounceable names that never contain one another, so a name found in a file is that entity.
struct NameMaker {
    enum Kind { case country, city, river, person, compound }
    var rng: WorldRandom
    private(set) var used: [String] = []

    static let onsets = ["b", "br", "c", "d", "dr", "f", "g", "gr", "h", "k", "l", "m", "n", "p", "r", "s", "t", "tr", "v", "z", "th", "sh"]
    static let vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ou"]
    static let codas = ["", "", "l", "n", "r", "s", "m", "nd", "rt"]

    mutating func syllable() -> String { rng.pick(Self.onsets) + rng.pick(Self.vowels) + rng.pick(Self.codas) }

    mutating func make(_ kind: Kind) -> String {
        while true {
            let candidate: String
            switch kind {
            case .country: candidate = capitalised(syllable() + rng.pick(["ia", "ora", "and", "esh", "avia", "istan"]))
            case .city: candidate = capitalised(syllable() + rng.pick(["ford", "holm", "mere", "gate", "wick", "port", "by"]))
            case .river: candidate = "the " + capitalised(syllable() + rng.pick(["a", "ine", "el", "o"])) + " River"
            case .person:
                candidate =
                    capitalised(syllable() + rng.pick(["a", "o", "en", "ik", "is"])) + " "
                    + capitalised(syllable() + syllable() + rng.pick(["er", "son", "ley", "ova"]))
            case .compound:
                candidate = capitalised(
                    syllable() + rng.pick(["dine", "zol", "amide", "oxin", "afen", "olol", "pril", "ivir", "mab", "tane"]))
            }
            let key = candidate.lowercased()
            if used.contains(where: { $0.contains(key) || key.contains($0) }) { continue }
            used.append(key)
            return candidate
        }
    }

    private func capitalised(_ s: String) -> String { s.prefix(1).uppercased() + s.dropFirst() }
}

enum Vocabulary {
    static let exports = ["copper", "wool", "salt", "tea", "glass", "timber", "amber", "silk", "barley", "tin", "pepper", "slate"]
    static let animals = [
        "the grey heron", "the red fox", "the snow hare", "the river otter", "the black kite", "the marsh frog",
        "the stone marten", "the golden eagle"
    ]
    static let inventionAdjectives = ["tide", "folding", "brass", "steam", "lantern", "clockwork", "glass", "wind", "rope", "copper"]
    static let inventionNouns = ["loom", "compass", "bellows", "printing press", "water clock", "telescope", "lock", "plough"]

    static let drugClasses = [
        "a keltase inhibitor", "a vesper blocker", "a morane agonist", "a tyrase antagonist",
        "a dorin reuptake blocker", "a selbic channel opener"
    ]
    static let indications = [
        "migraine", "fever", "insomnia", "gout", "nausea", "asthma", "high blood pressure", "joint pain",
        "anxiety", "acne", "heartburn", "hay fever"
    ]
    static let dosesMg = [5, 10, 20, 25, 40, 50, 100, 200, 250, 500]
    static let frequencies: [(String, Int)] = [("once daily", 1), ("twice daily", 2), ("three times daily", 3)]
    static let interactionEffects = [
        "dangerous drowsiness", "a risk of bleeding", "a fast heartbeat", "low blood pressure",
        "kidney damage", "serotonin excess"
    ]
    static let contraindications = ["kidney disease", "pregnancy", "liver disease", "epilepsy", "heart failure", "stomach ulcers"]
}
