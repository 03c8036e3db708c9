/**
 * The {@code cpu} backend: the rsLoRA layer of SPEC.md §2–4 and §6 on the JVM's Vector API,
 * multi-threaded, bit-for-bit deterministic.
 *
 * <pre>
 *   X [N, d_in], W [d_out, d_in], b [d_out], A [r, d_in], B [d_out, r], U [N, r], Y/dY [N, d_out]
 *   forward : U = D(X)·Aᵀ;  Y = X·Wᵀ + b + γ·U·Bᵀ
 *   backward: V = dY·B;  dB (=|+=) γ·dYᵀ·U;  dA (=|+=) γ·Vᵀ·D(X);  dX = dY·W + γ·D'(V·A)
 * </pre>
 *
 * Where things are:
 * <ul>
 *   <li>{@link dev.rslora.backend.cpu.CpuBackend}: the public entry point (validation, locking, merge);
 *       {@link dev.rslora.backend.cpu.CpuLimits}: the shapes whose heap scratch fits a Java array;</li>
 *   <li>{@link dev.rslora.backend.cpu.ForwardPass}, {@link dev.rslora.backend.cpu.BackwardPass}: one
 *       call's work as jobs of units (chunks of rows, panels, column groups);</li>
 *   <li>{@link dev.rslora.backend.cpu.MicroKernel}: the fp32 register tile every GEMM uses, shaped for
 *       the vector length and the JIT's register file (8×32 with 512-bit vectors; 8×16 with 256-bit
 *       where the JIT has 32 registers (SVE, AVX-512 limited to 256 bits), 6×16 with AVX2's 16; 8×12
 *       with 128-bit (6×8 where x86 gives the JIT 16 registers, 5×8 where it has no FMA
 *       instructions); 4×4 scalar; {@code -Drslora.cpu.vectorBits} forces a narrower one), and its
 *       one-row form;</li>
 *   <li>{@link dev.rslora.backend.cpu.MergedWeight}: for many rows and no dropout, W' = W + γB·A
 *       formed in a pass's packed layout in place of its LoRA K-segment;</li>
 *   <li>{@link dev.rslora.backend.cpu.GradGemm}, {@link dev.rslora.backend.cpu.RowGrads}: dA and dB
 *       as GEMMs over all N rows, or as outer products for N ≤ 64;
 *       {@link dev.rslora.backend.cpu.AdapterRows}: the adapter terms straight from row-major A and B
 *       for a backward of N ≤ 64 and a forward of N ≤ 2 (N ≤ 64 in training mode), with no cached
 *       adapter panels to repack after each optimizer step (from 4 rows, a panel per unit);</li>
 *   <li>{@link dev.rslora.backend.cpu.Panels}: packing into the kernel's B-operand panels, the
 *       transposed ones by {@link dev.rslora.backend.cpu.BlockTranspose}'s in-register L×L blocks;
 *       {@link dev.rslora.backend.cpu.CpuFrozenWeight}: W packed off-heap in fp32, the forward's layout
 *       by prepare and dX's by the first backward that computes dX (each again only after W or the
 *       bias was written), and the layer's
 *       packed adapter ({@link dev.rslora.backend.cpu.AdapterPanels}, repacked when A, B or γ change);</li>
 *   <li>{@link dev.rslora.backend.cpu.SegmentEnd}: masked loads kept inside their segment
 *       or array (the last rows through a zero-padded copy), so that hot methods do not compile the
 *       JDK's out-of-range path (RowGrads' tail vectors excepted: its comment says why);</li>
 *   <li>{@link dev.rslora.backend.cpu.MaskBits}: the dropout mask as keep bits (vectorised Philox,
 *       identical to {@link dev.rslora.dropout.DropoutMask});</li>
 *   <li>{@link dev.rslora.backend.cpu.Convert}: F32/BF16/F16 rows to and from fp32 (RNE stores);</li>
 *   <li>{@link dev.rslora.backend.cpu.WorkerPool}, {@link dev.rslora.backend.cpu.Split},
 *       {@link dev.rslora.backend.cpu.Scratch}, {@link dev.rslora.backend.cpu.NativeBuffer},
 *       {@link dev.rslora.backend.cpu.UnitsDone}: threads that claim units as they come, how work is
 *       cut, per-worker buffers, units of a job that its later units wait for.</li>
 * </ul>
 * Precision: every product is accumulated in fp32 (fma; a multiply then an add where the JIT has
 * no FMA instructions, {@link dev.rslora.simd.Fma}) and each output is rounded once to its
 * dtype; γ is folded into the packed Bᵀ (forward) and γA (backward dX) panels (the row path's dot
 * products and axpys, below 4 rows: into U's fp32 copy and, element by element, into A) and applied to the fp32 sums of dA and dB; on the merged route W' is rounded to fp32 once per element. Each output element is one fixed sequence of operations whichever
 * worker computes it, so results depend neither on the worker count nor on timing.
 * <p>No vector crosses a method boundary: vector code loads, computes and stores inside one method,
 * and helpers pass arrays, segments and offsets, never a vector, mask, shuffle or species. C2 keeps
 * vectors in registers only within a method and what it inlines, and which calls it inlines depends
 * on the run's profile: a vector passed to or returned from a call left out of line is boxed at
 * every call (dev.rslora.VectorBoundaryTest checks the rule, the cpu-no-inline test execution the
 * allocation with nothing of ours inlined). Performance notes and measurements: the commit history, {@code dev.rslora.bench.CpuLayerBenchmark} and
 * bench/RESULTS.md.
 */
package dev.rslora.backend.cpu;
