// swift-tools-version: 6.1
import PackageDescription

/// Training code is numeric and slow without optimisation; it is compiled with -O in every configuration.
let optimised: [SwiftSetting] = [.unsafeFlags(["-O"])]

let package = Package(
    name: "Harrow",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "harrow", targets: ["HarrowCLI"]),
        .executable(name: "harrow-train", targets: ["HarrowTrain"]),
        .executable(name: "harrow-fuzz", targets: ["HarrowFuzz"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", exact: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", exact: "1.0.2"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"])
    ],
    targets: [
        // System libraries.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CGit2", pkgConfig: "libgit2", providers: [.apt(["libgit2-dev"])]),

        // Pure, no dependencies: the vocabulary every module shares (parameter values, escaping, the trainer
        // contract, did-you-mean).
        .target(name: "HarrowCore"),

        // YAML from pull requests, with a bound on what its aliases expand to.
        .target(name: "BoundedYAML", dependencies: [.product(name: "Yams", package: "Yams")]),

        // Pure: experiment files → trials.
        .target(
            name: "Sweep",
            dependencies: [
                "HarrowCore", "BoundedYAML",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto")
            ]),

        // I/O: the SQLite store, git provenance, importers of other trainers' logs.
        .target(
            name: "Tracking",
            dependencies: [
                "HarrowCore", "CGit2",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto")
            ]),

        // Pure: loss curves → verdicts with evidence and advice.
        .target(name: "Diagnosis", dependencies: ["HarrowCore"]),

        // Evaluation: evalsets and scoring are pure; the scorer client speaks the score protocol to a process.
        .target(
            name: "Evaluation",
            dependencies: [
                "HarrowCore", "BoundedYAML",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Subprocess", package: "swift-subprocess")
            ]),

        // Pure: release rules → pass/fail with reasons.
        .target(name: "Gate", dependencies: ["HarrowCore", "BoundedYAML", .product(name: "Yams", package: "Yams")]),

        // I/O: dashboards → static HTML pages and gnuplot SVGs (dashboard parsing, downsampling, seed groups and
        // chart scripts are pure).
        .target(
            name: "Reporting",
            dependencies: [
                "HarrowCore", "Tracking", "Gate", "BoundedYAML", "Sweep", "Evaluation",
                .product(name: "Yams", package: "Yams")
            ]),

        // I/O: slots, trainer subprocesses, metrics ingestion, resume.
        .target(
            name: "Runner",
            dependencies: [
                "HarrowCore", "Sweep", "Tracking", "Diagnosis", "Evaluation",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "Logging", package: "swift-log")
            ]),

        // Compute: the shared training core and the built-in trainer.
        .target(name: "TrainingCore", dependencies: ["HarrowCore", "CBLAS"], swiftSettings: optimised),
        // Pure: the fictional world and the shipped datasets and evalsets made from it.
        .target(name: "World", dependencies: ["HarrowCore"]),
        .executableTarget(
            name: "HarrowTrain",
            dependencies: [
                "HarrowCore", "TrainingCore", "World", "Sweep",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // HTTP for `harrow-train serve` (FlyingSocks: its listening addresses); no SwiftNIO underneath.
                .product(name: "FlyingFox", package: "FlyingFox"), .product(name: "FlyingSocks", package: "FlyingFox")
            ]),

        // The thin command line.
        .executableTarget(
            name: "HarrowCLI",
            dependencies: [
                "HarrowCore", "Sweep", "Tracking", "Runner", "Diagnosis", "Evaluation", "Gate", "Reporting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log")
            ]),

        // Fuzzing: every parser of outside input, as one function from bytes each; the harness runs them in a
        // worker process it watches for traps, hangs and memory growth.
        .target(name: "FuzzTargets", dependencies: ["Sweep", "Reporting", "Gate", "Evaluation", "Tracking"]),
        .executableTarget(
            name: "HarrowFuzz",
            dependencies: [
                "HarrowCore", "FuzzTargets",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto")
            ]),

        .testTarget(name: "SweepTests", dependencies: ["Sweep"], resources: [.copy("Fixtures")]),
        .testTarget(name: "BoundedYAMLTests", dependencies: ["BoundedYAML", "Sweep", "Gate", "Reporting", "Evaluation"]),
        .testTarget(name: "HarrowCLITests", dependencies: ["HarrowCLI"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation"], resources: [.copy("Fixtures")]),
        .testTarget(name: "GateTests", dependencies: ["Gate"]),
        .testTarget(name: "DiagnosisTests", dependencies: ["Diagnosis"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TrackingTests", dependencies: ["Tracking"], resources: [.copy("Fixtures")]),
        .testTarget(name: "RunnerTests", dependencies: ["Runner", "Tracking", "Sweep"]),
        .testTarget(name: "ReportingTests", dependencies: ["Reporting", "Tracking"]),
        .testTarget(name: "SystemLibraryTests", dependencies: ["CBLAS", "CGit2"]),
        .testTarget(name: "TrainingCoreTests", dependencies: ["TrainingCore", "HarrowTrain", "Evaluation"]),
        .testTarget(name: "FuzzRegressionTests", dependencies: ["FuzzTargets", "Sweep", "Tracking", "Evaluation"]),
        .testTarget(name: "WorldTests", dependencies: ["World"], exclude: ["choice_accuracy.py"]),

        .executableTarget(
            name: "SweepBench",
            dependencies: ["Sweep", .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/SweepBench",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "TrackingBench",
            dependencies: [
                "Tracking", "Runner", "Sweep", .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "Benchmark", package: "benchmark")
            ],
            path: "Benchmarks/TrackingBench",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "ReportBench",
            dependencies: ["Reporting", "Tracking", .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/ReportBench",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
