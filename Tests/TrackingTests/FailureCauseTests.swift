import HarrowCore
import Testing

/// Failure causes from the lines real runtimes print. Messages as their sources write them:
/// - PyTorch 2.x `CUDACachingAllocator.cpp` (`torch.OutOfMemoryError: CUDA out of memory. Tried to allocate …`), its
///   CPU allocator `alloc_cpu.cpp` (`[enforce fail at alloc_cpu.cpp:…] . DefaultCPUAllocator: can't allocate memory`);
/// - cuBLAS's status name `CUBLAS_STATUS_ALLOC_FAILED` as PyTorch raises it;
/// - Slurm's `slurmstepd: error: Detected 1 oom_kill event in StepId=…`;
/// - Python's `ModuleNotFoundError`.
@Suite struct FailureCauseTests {
    func cause(_ facts: FailureReading.Facts) -> FailureCause? { FailureReading.classify(facts)?.cause }

    @Test func outOfMemoryOnTheGPUIsToldByItsLine() throws {
        let tail = """
            Traceback (most recent call last):
              File "train.py", line 88, in <module>
                trainer.train()
            torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.64 GiB of which 1.12 GiB is free.
            """
        let f = try #require(FailureReading.classify(.init(status: "failed", exitCode: 1, duration: 300, stderrTail: tail, reported: true)))
        #expect(f.cause == .outOfMemoryGPU)
        #expect(
            f.lines == [
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.64 GiB of which 1.12 GiB is free."
            ])
        #expect(
            cause(
                .init(
                    status: "failed", stderrTail: "RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"
                )) == .outOfMemoryGPU)
        // Out of memory wins over the time limit it may have run into afterwards.
        #expect(
            cause(.init(status: "timed_out", stderrTail: "RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB"))
                == .outOfMemoryGPU)
    }

    @Test func outOfMemoryOnTheHost() {
        #expect(
            cause(
                .init(
                    status: "failed",
                    stderrTail:
                        "RuntimeError: [enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: can't allocate memory: you tried to allocate 34359738368 bytes."
                )) == .outOfMemoryHost)
        #expect(
            cause(
                .init(
                    status: "failed", signal: 9,
                    stderrTail:
                        "slurmstepd: error: Detected 1 oom_kill event in StepId=4127.batch. Some of the step tasks have been OOM Killed."))
                == .outOfMemoryHost)
    }

    /// The kernel's OOM killer leaves no stderr: its count in /proc/vmstat and its log line tell it (a record as
    /// /dev/kmsg gives it, from a kill on this machine's kernel 6.18).
    @Test func theKernelsOutOfMemoryKillerIsToldByItsCountAndLine() throws {
        let record = "3,1047,28392071026,-;Memory cgroup out of memory: Killed process 1806 (python3) total-vm:323768kB, anon-rss:65152kB\n"
        let line = OOMKiller.message(ofKernelRecord: record)
        #expect(line == "Memory cgroup out of memory: Killed process 1806 (python3) total-vm:323768kB, anon-rss:65152kB")
        #expect(OOMKiller.kills(vmstat: "pgfault 12\noom_kill 3\nnuma_hit 0\n") == 3)
        let other = "Out of memory: Killed process 77 (java) total-vm:1kB"
        // Its own pid's line is preferred; another kill is quoted as the last one.
        let own = try #require(
            OOMKiller.note(signal: 9, exitCode: nil, killsBefore: 2, killsAfter: 4, kernelLines: [line, other], pid: 1806))
        #expect(own == "the kernel's out-of-memory killer ended it: /proc/vmstat oom_kill rose from 2 to 4 while it ran\n" + line)
        let shell = try #require(
            OOMKiller.note(signal: nil, exitCode: 137, killsBefore: 2, killsAfter: 3, kernelLines: [line, other], pid: 5))
        #expect(shell.hasSuffix("; the kernel's last kill:\n" + other))
        // No kill counted while it ran, or another end: not the OOM killer.
        #expect(OOMKiller.note(signal: 9, exitCode: nil, killsBefore: 3, killsAfter: 3, kernelLines: [line], pid: 1806) == nil)
        #expect(OOMKiller.note(signal: 15, exitCode: nil, killsBefore: 3, killsAfter: 4, kernelLines: [line], pid: 1806) == nil)
        #expect(OOMKiller.note(signal: 9, exitCode: nil, killsBefore: nil, killsAfter: 4, kernelLines: [], pid: 1806) == nil)
        // Without a readable log the count alone decides, and the run is told out of memory (host).
        let countOnly = try #require(OOMKiller.note(signal: 9, exitCode: nil, killsBefore: 0, killsAfter: 1, kernelLines: [], pid: 9))
        let f = try #require(
            FailureReading.classify(
                .init(status: "failed", signal: 9, duration: 400, stderrTail: countOnly + "\n", note: countOnly, reported: true)))
        #expect(f.cause == .outOfMemoryHost)
        #expect(f.lines == [countOnly])
    }

    @Test func divergedFromItsMetricsOrItsWord() {
        #expect(
            cause(.init(status: "failed", exitCode: 1, duration: 500, stderrTail: "ValueError: something", nonfinite: 3, reported: true))
                == .diverged)
        let f = FailureReading.classify(.init(status: "failed", exitCode: 1, duration: 500, nonfinite: 1, reported: true))
        #expect(f?.lines == ["1 non-finite loss value reported"])
    }

    @Test func aCrashBeforeAnyMetricInTheFirstMinuteIsASetupError() {
        let tail =
            "Traceback (most recent call last):\n  File \"train.py\", line 3, in <module>\n    import trl\nModuleNotFoundError: No module named 'trl'"
        let f = FailureReading.classify(.init(status: "failed", exitCode: 1, duration: 2.5, stderrTail: tail, reported: false))
        #expect(
            f == .init(cause: .crashedAtStart, lines: ["Traceback (most recent call last):", "ModuleNotFoundError: No module named 'trl'"]))
        // The same error after metrics arrived is a crash in training.
        #expect(cause(.init(status: "failed", exitCode: 1, duration: 2.5, stderrTail: tail, reported: true)) == .crashed)
        #expect(cause(.init(status: "failed", exitCode: 1, duration: 600, stderrTail: tail, reported: false)) == .crashed)
        // Nothing on stderr: how it ended.
        #expect(
            FailureReading.classify(.init(status: "failed", signal: 9, duration: 900, reported: true))?.lines
                == ["ended by signal 9 (SIGKILL: the kernel's OOM killer sends it when the host runs out of memory)"])
    }

    @Test func timeLimitsAndTheClusterTakingTheJobBack() {
        #expect(cause(.init(status: "timed_out", duration: 1800)) == .timedOut)
        #expect(cause(.init(status: "interrupted", note: "the Slurm job was cancelled")) == .cancelled)
        #expect(cause(.init(status: "interrupted", note: "Slurm: preempted")) == .preempted)
        #expect(cause(.init(status: "interrupted", note: "Slurm: node fail")) == .preempted)
        #expect(cause(.init(status: "interrupted")) == .interrupted)
        #expect(
            cause(.init(status: "succeeded")) == nil && cause(.init(status: "stopped_early")) == nil
                && cause(.init(status: "running")) == nil)
    }
}
