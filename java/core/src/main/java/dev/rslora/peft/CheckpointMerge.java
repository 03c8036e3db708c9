package dev.rslora.peft;

import dev.rslora.backend.MergeMath;
import dev.rslora.internal.Args;
import dev.rslora.io.SafetensorsEntry;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;
import dev.rslora.io.StagedOutput;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Merges an adapter into a whole base checkpoint, streaming: one tensor at a time, each through
 * one 8 MiB buffer, from the memory-mapped base to the output, so memory stays bounded whatever
 * the checkpoint's size (the heap holds headers and one module's A and B as fp32).
 *
 * <ul>
 *   <li>each adapted weight {@code P.weight} becomes {@code round(W ± γ·B·A)} ({@link MergeMath}:
 *       computed in fp32, rounded once to the base dtype; transposed for fan_in_fan_out);</li>
 *   <li>each extra adapter tensor (modules_to_save, a SEQ_CLS head) replaces the base tensor of
 *       the same name, converted to its dtype, as PEFT's merge_and_unload does;</li>
 *   <li>every other tensor is copied byte for byte; each file keeps its header metadata; a
 *       shard folder keeps its layout, its index and its other regular files (config.json, tokenizer…);
 *       its subfolders and hidden files are not copied, and {@link #notCopied()} names them.</li>
 * </ul>
 * Everything is checked before anything is written (missing base tensors, shape mismatches
 * named with the module and both shapes, dtypes). The output is written under a temporary name
 * and renamed into place only when complete ({@link StagedOutput}); on an error or after
 * {@link #cancel(long)} nothing of it remains.
 */
public final class CheckpointMerge {
    /** Bytes written so far, reported from the writing thread after each chunk. */
    @FunctionalInterface
    public interface Progress {
        /**
         * Called with the bytes written since the last call.
         *
         * @param bytes tensor-data bytes written, &gt; 0; the calls sum to {@link #totalBytes()}
         */
        void advance(long bytes);
    }

    private final BaseCheckpoint base;
    private final AdapterSet adapter;
    private final int sign;
    private volatile boolean cancelled;
    private final CountDownLatch finished = new CountDownLatch(1);
    /** Entries of a base folder the last writeTo left out (subfolders, hidden and special files). */
    private volatile List<String> notCopied = List.of();

    /**
     * Checks that {@code adapter} fits {@code base}.
     *
     * @param base    the checkpoint to merge into (only read)
     * @param adapter the adapter whose γ·B·A is added to (or subtracted from) the base weights
     * @param unmerge subtract instead of add (refused when the adapter replaces base tensors,
     *                whose original values a merged checkpoint no longer holds)
     * @throws PeftFormatException naming the module or tensor that does not fit, or when the adapter holds nothing to merge
     */
    public CheckpointMerge(BaseCheckpoint base, AdapterSet adapter, boolean unmerge) throws PeftFormatException {
        this.base = Args.given("CheckpointMerge", "base", base);
        this.adapter = Args.given("CheckpointMerge", "adapter", adapter);
        this.sign = unmerge ? -1 : 1;
        if (adapter.modules().isEmpty() && adapter.extras().isEmpty()) {
            throw new PeftFormatException("the adapter has no LoRA modules and no extra tensors: a merge would only copy "
                    + base.path() + " unchanged");
        }
        boolean fanInFanOut = adapter.config().fanInFanOut();
        for (AdapterModule m : adapter.modules().values()) {
            String name = m.weightName();
            if (!base.contains(name)) {
                throw new PeftFormatException("adapter module " + m.path() + ": the base checkpoint " + base.path()
                        + " has no tensor " + PeftConfigReader.quote(name) + " (missing key)");
            }
            SafetensorsEntry e = base.entry(name);
            if (!e.dtype().isComputable()) {
                throw new PeftFormatException("adapter module " + m.path() + ": base tensor " + name + " has dtype " + e.dtypeName()
                        + "; a merge needs F32, BF16 or F16");
            }
            try {
                MergeMath.checkShapes(m.loraA(), m.loraB(), fanInFanOut, e.shape());
            } catch (IllegalArgumentException ex) {
                throw new PeftFormatException("adapter module " + m.path() + ": shape mismatch: " + ex.getMessage()
                        + " (base tensor " + name + ")");
            }
        }
        for (var x : adapter.extras().entrySet()) {
            String name = x.getKey();
            if (!base.contains(name)) {
                throw new PeftFormatException("adapter tensor " + AdapterSet.PREFIX + name + " replaces base tensor "
                        + PeftConfigReader.quote(name) + ", which " + base.path() + " does not have (missing key)");
            }
            SafetensorsEntry e = base.entry(name);
            if (!Arrays.equals(e.shape(), x.getValue().shape()) || !e.dtype().isComputable()) {
                throw new PeftFormatException("adapter tensor " + AdapterSet.PREFIX + name + " " + x.getValue().shapeString()
                        + " cannot replace base tensor " + name + " " + e.dtypeName() + " " + e.shapeString() + " (shape mismatch)");
            }
            if (unmerge) {
                throw new PeftFormatException("cannot unmerge: the adapter replaced base tensor " + name
                        + " on merge, and its original values are not in the merged checkpoint");
            }
        }
    }

    /**
     * Bytes of tensor data the merge writes (the base's total).
     *
     * @return the sum that {@link Progress#advance} will report
     */
    public long totalBytes() {
        return base.dataBytes();
    }

    /**
     * Writes the merged checkpoint to {@code out}: a file when the base is a file (an existing
     * file is replaced atomically), a folder (which must not exist) when the base is a folder.
     *
     * @param out      the output file or folder; not the base itself
     * @param progress told of the bytes written, from this thread; null for no reports
     * @throws java.io.InterruptedIOException after {@link #cancel(long)} (nothing of the output remains)
     * @throws IOException if writing fails, the output folder exists, or out is the base (nothing remains)
     */
    public void writeTo(Path out, Progress progress) throws IOException {
        Progress report = progress != null ? progress : bytes -> { };
        try {
            Path target = out.toAbsolutePath().normalize();
            if (target.equals(base.path().toAbsolutePath().normalize())) {
                throw new PeftFormatException("the output " + out + " is the base checkpoint itself; choose another path");
            }
            try (StagedOutput staged = base.isFolder() ? StagedOutput.folder(out, false) : StagedOutput.file(out)) {
                for (BaseCheckpoint.Shard shard : base.shards()) {
                    Path file = base.isFolder() ? staged.dir().resolve(shard.fileName()) : staged.stagedFile();
                    try {
                        writeShard(shard.file(), file, report);
                    } catch (IOException e) {
                        throw staged.userFacing(e);
                    }
                }
                if (base.isFolder()) {
                    copyOtherFiles(staged.dir());
                }
                checkCancelled();
                staged.commit();
            }
        } finally {
            finished.countDown();
        }
    }

    /**
     * Asks a running {@link #writeTo} to stop at its next chunk and waits up to
     * {@code waitMillis} for it to have removed its partial output (for a shutdown hook).
     *
     * @param waitMillis how long to wait, in milliseconds (0: do not wait)
     * @throws InterruptedException if this thread is interrupted while waiting
     */
    public void cancel(long waitMillis) throws InterruptedException {
        cancelled = true;
        finished.await(waitMillis, TimeUnit.MILLISECONDS);
    }

    private void checkCancelled() throws InterruptedIOException {
        if (cancelled) {
            throw new InterruptedIOException("merge cancelled");
        }
    }

    private void writeShard(SafetensorsFile in, Path file, Progress progress) throws IOException {
        SafetensorsWriter w = new SafetensorsWriter().metadata(in.metadata());
        for (SafetensorsEntry e : in.entries()) {
            String name = e.name();
            SafetensorsWriter.ByteProducer body;
            String module = name.endsWith(".weight") ? name.substring(0, name.length() - ".weight".length()) : null;
            if (module != null && adapter.modules().containsKey(module)) {
                body = mergedWeight(adapter.module(module), in.tensor(name));
            } else if (adapter.extras().containsKey(name)) {
                body = TensorBytes.convert(adapter.extras().get(name), e.dtype().compute());
            } else {
                body = TensorBytes.copy(in.bytes(name));
            }
            w.add(SafetensorsWriter.Item.computed(name, e.dtype(), e.shape(), (offset, dst) -> {
                checkCancelled();
                body.fill(offset, dst);
                progress.advance(dst.byteSize());
            }));
        }
        w.write(file);
    }

    /** round(W ± γ·B·A) chunk by chunk; A and B are staged as fp32 only while this tensor is written. */
    private SafetensorsWriter.ByteProducer mergedWeight(AdapterModule m, Tensor w) {
        DType dt = w.dtype();
        boolean fanInFanOut = adapter.config().fanInFanOut();
        MergeMath[] prepared = new MergeMath[1];
        long total = w.numel();
        return (offset, dst) -> {
            if (offset == 0 || prepared[0] == null) {
                prepared[0] = MergeMath.prepare(m.loraA(), m.loraB(), m.gamma(), sign, fanInFanOut, w.shape());
            }
            long first = offset / dt.byteSize();
            long count = dst.byteSize() / dt.byteSize();
            try {
                prepared[0].apply(w, first, count, dst, dt);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("module " + m.path() + ": " + e.getMessage() + "; nothing was written", e);
            }
            if (first + count == total) {
                prepared[0] = null;
            }
        };
    }

    /** A shard folder's other files (index, config.json, tokenizer files...), byte for byte. */
    private void copyOtherFiles(Path staging) throws IOException {
        Set<String> shardNames = new HashSet<>();
        for (BaseCheckpoint.Shard s : base.shards()) {
            shardNames.add(s.fileName());
        }
        List<Path> others = new ArrayList<>();
        List<String> left = new ArrayList<>();
        try (Stream<Path> list = Files.list(base.path())) {
            for (Path p : list.sorted().toList()) {
                String n = p.getFileName().toString();
                if (shardNames.contains(n)) {
                    continue;
                }
                if (Files.isRegularFile(p) && !n.startsWith(".")) {
                    others.add(p);
                } else {
                    left.add(Files.isDirectory(p) ? n + "/ (a folder)" : n.startsWith(".") ? n + " (a hidden file)"
                            : n + " (not a regular file)");
                }
            }
        }
        notCopied = List.copyOf(left);
        for (Path p : others) {
            checkCancelled();
            Files.copy(p, staging.resolve(p.getFileName()));
        }
    }

    /**
     * What the last {@link #writeTo} of a shard folder did not copy from the base folder: its subfolders
     * (an {@code original/} copy of the weights, say), hidden files ({@code .gitattributes}) and special
     * files, each named with why, so that a caller can say so.
     *
     * @return names with a reason, sorted; empty for a single-file base or before writeTo
     */
    public List<String> notCopied() {
        return notCopied;
    }

    /**
     * The base weights the adapter changes, in adapter order.
     *
     * @return the tensor names ({@code <module>.weight})
     */

    public List<String> targetTensors() {
        List<String> out = new ArrayList<>();
        for (AdapterModule m : adapter.modules().values()) {
            out.add(m.weightName());
        }
        return out;
    }
}
