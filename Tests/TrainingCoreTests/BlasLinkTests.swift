import Testing
@testable import TrainingCore

@Test func openBLASIsLinked() {
    #expect(TrainingCore.blasConfig.contains("OpenBLAS"))
}
