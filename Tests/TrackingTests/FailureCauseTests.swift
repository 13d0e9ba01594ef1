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
        #expect(f.lines == ["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.64 GiB of which 1.12 GiB is free."])
        #expect(cause(.init(status: "failed", stderrTail: "RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`")) == .outOfMemoryGPU)
        // Out of memory wins over the time limit it may have run into afterwards.
        #expect(cause(.init(status: "timed_out", stderrTail: "RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB")) == .outOfMemoryGPU)
    }

    @Test func outOfMemoryOnTheHost() {
        #expect(cause(.init(status: "failed", stderrTail: "RuntimeError: [enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: can't allocate memory: you tried to allocate 34359738368 bytes.")) == .outOfMemoryHost)
        #expect(cause(.init(status: "failed", signal: 9, stderrTail: "slurmstepd: error: Detected 1 oom_kill event in StepId=4127.batch. Some of the step tasks have been OOM Killed.")) == .outOfMemoryHost)
    }

    @Test func divergedFromItsMetricsOrItsWord() {
        #expect(cause(.init(status: "failed", exitCode: 1, duration: 500, stderrTail: "ValueError: something", nonfinite: 3, reported: true)) == .diverged)
        let f = FailureReading.classify(.init(status: "failed", exitCode: 1, duration: 500, nonfinite: 1, reported: true))
        #expect(f?.lines == ["1 non-finite loss value reported"])
    }

    @Test func aCrashBeforeAnyMetricInTheFirstMinuteIsASetupError() {
        let tail = "Traceback (most recent call last):\n  File \"train.py\", line 3, in <module>\n    import trl\nModuleNotFoundError: No module named 'trl'"
        let f = FailureReading.classify(.init(status: "failed", exitCode: 1, duration: 2.5, stderrTail: tail, reported: false))
        #expect(f == .init(cause: .crashedAtStart, lines: ["Traceback (most recent call last):", "ModuleNotFoundError: No module named 'trl'"]))
        // The same error after metrics arrived is a crash in training.
        #expect(cause(.init(status: "failed", exitCode: 1, duration: 2.5, stderrTail: tail, reported: true)) == .crashed)
        #expect(cause(.init(status: "failed", exitCode: 1, duration: 600, stderrTail: tail, reported: false)) == .crashed)
        // Nothing on stderr: how it ended.
        #expect(FailureReading.classify(.init(status: "failed", signal: 9, duration: 900, reported: true))?.lines
                == ["ended by signal 9 (SIGKILL: the kernel's OOM killer sends it when the host runs out of memory)"])
    }

    @Test func timeLimitsAndTheClusterTakingTheJobBack() {
        #expect(cause(.init(status: "timed_out", duration: 1800)) == .timedOut)
        #expect(cause(.init(status: "interrupted", note: "the Slurm job was cancelled")) == .cancelled)
        #expect(cause(.init(status: "interrupted", note: "Slurm: preempted")) == .preempted)
        #expect(cause(.init(status: "interrupted", note: "Slurm: node fail")) == .preempted)
        #expect(cause(.init(status: "interrupted")) == .interrupted)
        #expect(cause(.init(status: "succeeded")) == nil && cause(.init(status: "stopped_early")) == nil && cause(.init(status: "running")) == nil)
    }
}
