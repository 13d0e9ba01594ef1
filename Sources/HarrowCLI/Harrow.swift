import ArgumentParser
@main struct Harrow: ParsableCommand {}
