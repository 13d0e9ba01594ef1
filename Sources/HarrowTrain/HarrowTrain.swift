import ArgumentParser
import TrainingCore

@main
struct HarrowTrain: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "harrow-train", abstract: "Harrow's built-in LoRA trainer.")
    func run() throws { print(TrainingCore.blasConfig) }
}
