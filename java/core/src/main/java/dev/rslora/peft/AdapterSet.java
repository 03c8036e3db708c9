package dev.rslora.peft;

import dev.rslora.backend.Backend;
import dev.rslora.backend.BackendChecks;
import dev.rslora.core.Init;
import dev.rslora.core.LoraConfig;
import dev.rslora.core.LoraLinear;
import dev.rslora.internal.Args;
import dev.rslora.io.SafetensorsDtype;
import dev.rslora.io.SafetensorsEntry;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;
import dev.rslora.io.StagedOutput;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A PEFT LoRA adapter over a whole model: adapters keyed by module path, the config they come
 * from, and the extra tensors PEFT saves next to them (a {@code modules_to_save} module or the
 * SEQ_CLS head, e.g. {@code score.weight}, which a merge writes over the base tensor).
 *
 * <p>The folder layout (SPEC.md §8): {@code adapter_config.json} and
 * {@code adapter_model.safetensors} with metadata {@code {"format":"pt"}}, keys
 * {@code base_model.model.<path>.lora_A.weight} [r, d_in] and {@code ….lora_B.weight}
 * [d_out, r], extra tensors as {@code base_model.model.<base tensor name>}.
 *
 * <p>Tensors are views: of the memory-mapped adapter file ({@link #load}), of the caller's arena
 * ({@link #init}) or of live {@link LoraLinear} parameters ({@link #of}); the arena or layers
 * must outlive this object. γ is always recomputed from the config (α/√r with use_rslora,
 * α/r without).
 */
public final class AdapterSet {
    /** The key prefix PEFT writes (the adapter name is not part of the key). */
    public static final String PREFIX = "base_model.model.";
    /** The config file's name in an adapter folder. */
    public static final String CONFIG_FILE = "adapter_config.json";
    /** The weights file's name in an adapter folder. */
    public static final String WEIGHTS_FILE = "adapter_model.safetensors";
    private static final String A_SUFFIX = ".lora_A.weight";
    private static final String B_SUFFIX = ".lora_B.weight";
    private static final String B_BIAS_SUFFIX = ".lora_B.bias";

    private final PeftConfig config;
    private final Map<String, AdapterModule> modules;
    private final Map<String, Tensor> extras;

    /**
     * An adapter set from its parts (copied into unmodifiable maps).
     *
     * @param config  the PEFT config written with the adapter
     * @param modules module path → adapter, in order
     * @param extras  base tensor name → tensor that replaces it on merge (may be empty)
     * @throws IllegalArgumentException if a module is keyed under another path than its own
     */
    public AdapterSet(PeftConfig config, Map<String, AdapterModule> modules, Map<String, Tensor> extras) {
        this.config = Args.given("AdapterSet", "config", config);
        this.modules = Collections.unmodifiableMap(new LinkedHashMap<>(Args.given("AdapterSet", "modules", modules)));
        this.extras = Collections.unmodifiableMap(new LinkedHashMap<>(Args.given("AdapterSet", "extras", extras)));
        this.modules.forEach((k, v) -> Args.given("AdapterSet", "module " + k, v));
        this.extras.forEach((k, v) -> Args.given("AdapterSet", "extra " + k, v));
        for (Map.Entry<String, AdapterModule> e : this.modules.entrySet()) {
            if (!e.getKey().equals(e.getValue().path())) {
                throw new IllegalArgumentException("module keyed " + e.getKey() + " has path " + e.getValue().path());
            }
        }
    }

    // ------------------------------------------------------------------ creation

    /**
     * Refuses, before anything is allocated, an adapter whose A and B together need more than
     * {@code available} bytes: the JDK's off-heap allocation may succeed on an overcommitting OS, and
     * initialising A then ran for minutes into the OOM killer ({@code init --rank 100000} on a GPT-2:
     * 15 GB on a 24 GB machine).
     *
     * @param available bytes the machine can still give (MemAvailable), or −1 when unknown: no check
     */
    static void refuseBeyondMemory(BaseCheckpoint base, PeftConfig config, long available) {
        if (available < 0) {
            return;
        }
        long total = 0;
        int modules = 0;
        String largest = null;
        long largestBytes = 0;
        for (String path : base.linearModules()) {
            if (!config.targets(path)) {
                continue;
            }
            long[] w = base.entry(path + ".weight").shape();
            long bytes = 4L * config.rankOf(path) * (w[0] + w[1]);
            total += bytes;
            modules++;
            if (bytes > largestBytes) {
                largestBytes = bytes;
                largest = path;
            }
        }
        if (total > available) {
            throw new IllegalArgumentException("lora_A and lora_B of the " + modules + " targeted modules need " + total
                    + " bytes in F32 (module " + largest + ": r=" + config.rankOf(largest) + ", " + largestBytes + " bytes), more"
                    + " than the " + available + " bytes this machine has available: choose a smaller rank");
        }
    }

    /** MemAvailable from /proc/meminfo in bytes, or −1 where it cannot be read (not Linux). */
    static long availableMemoryBytes() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemAvailable:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (java.io.IOException | RuntimeException e) {
            return -1;
        }
        return -1;
    }

    /**
     * A new adapter on every module of {@code base} that {@code config} targets (2-D float
     * weights only): A initialised per the config's init_lora_weights (SPEC.md §5: uniform on
     * ±1/√d_in, or normal with std 1/r), B = 0, F32, allocated in {@code arena}. Each module draws
     * from its own stream, a function of {@code seed} and its path only.
     *
     * @param base   the base checkpoint whose 2-D weights are candidates
     * @param config target_modules, ranks, alphas and init
     * @param seed   seeds every module's A (with the module's path)
     * @param arena  owns the new A and B tensors
     * @return the new set, one module per targeted weight, no extras
     * @throws PeftFormatException when no module matches
     * @throws IllegalArgumentException naming the module and r when its A and B cannot be allocated, or for an
     *                                  init_lora_weights this library does not implement ({@link PeftConfig#initForNewWeights})
     */
    public static AdapterSet init(BaseCheckpoint base, PeftConfig config, long seed, Arena arena) throws PeftFormatException {
        Args.given("AdapterSet.init", "base", base);
        Args.given("AdapterSet.init", "config", config);
        Args.given("AdapterSet.init", "arena", arena);
        Map<String, AdapterModule> mods = new LinkedHashMap<>();
        Init init = config.initForNewWeights();
        refuseBeyondMemory(base, config, availableMemoryBytes());
        for (String path : base.linearModules()) {
            if (!config.targets(path)) {
                continue;
            }
            long[] w = base.entry(path + ".weight").shape();
            long dOut = config.fanInFanOut() ? w[1] : w[0];
            long dIn = config.fanInFanOut() ? w[0] : w[1];
            LoraConfig lc = config.loraConfig(path, init, 0);   // the dropout seed is chosen in layer()
            Tensor a;
            Tensor b;
            try {
                a = Tensor.allocate(arena, DType.F32, lc.rank(), dIn);
                b = Tensor.allocate(arena, DType.F32, dOut, lc.rank());
            } catch (OutOfMemoryError e) {  // malloc refused: an absurd r, not a full heap (-Xmx would not help)
                throw new IllegalArgumentException("module " + path + ": r=" + lc.rank() + " needs lora_A [" + lc.rank() + ", " + dIn
                        + "] and lora_B [" + dOut + ", " + lc.rank() + "] in F32, " + 4L * lc.rank() * (dIn + dOut)
                        + " bytes, which this machine could not allocate (" + e.getMessage() + ")", e);
            }
            initA(a, init, new SplittableRandom(seed ^ (0x9E3779B97F4A7C15L * (path.hashCode() + 0x632BE5ABL))));
            mods.put(path, new AdapterModule(path, lc, a, b));
        }
        if (mods.isEmpty() && config.targetModules() != null && config.targetModules().isAllLinear()) {
            throw new PeftFormatException("target_modules \"all-linear\" is resolved by PEFT from the model's layer types, which "
                    + base.path() + " does not record (a 2-D weight may be an embedding or the output layer): list the module names,"
                    + " e.g. " + preview(base.linearModules()));
        }
        if (mods.isEmpty()) {
            throw new PeftFormatException("target_modules " + config.targetModules() + " matches no 2-D weight of " + base.path()
                    + " (" + base.linearModules().size() + " candidate modules, e.g. " + preview(base.linearModules()) + ")");
        }
        return new AdapterSet(config, mods, Map.of());
    }

    /** A [r, d_in]: U(−1/√d_in, 1/√d_in) for DEFAULT, N(0, (1/r)²) for GAUSSIAN. */
    private static void initA(Tensor a, Init init, SplittableRandom rng) {
        double bound = 1.0 / Math.sqrt(a.dim(1));
        double std = 1.0 / a.dim(0);
        for (long i = 0; i < a.numel(); i++) {
            a.set(i, (float) (init == Init.GAUSSIAN ? std * rng.nextGaussian() : rng.nextDouble(-bound, bound)));
        }
    }

    /**
     * The adapters of trained layers, to save them: module path → layer (its live A and B, its
     * r, α, scaling and dropout, which must agree with {@code config} for that path, as a reader
     * will recompute them from the config).
     *
     * @param config the config to save with the layers
     * @param layers module path → layer, in the order to save (A and B are views, not copies)
     * @return the set
     * @throws IllegalArgumentException naming the module when the config does not target a path
     *         (by the rules {@link #load} applies, {@link PeftConfig#admits}) or gives it another r,
     *         α, scaling or lora_dropout than its layer has, also once its rank_pattern and
     *         alpha_pattern keys are sorted as the saved file stores them: such an adapter could be
     *         saved but not loaded, or would load as a different adapter
     */
    public static AdapterSet of(PeftConfig config, Map<String, LoraLinear> layers) {
        Args.given("AdapterSet.of", "config", config);
        Args.given("AdapterSet.of", "layers", layers).forEach((k, v) -> Args.given("AdapterSet.of", "layer " + k, v));
        Map<String, AdapterModule> mods = new LinkedHashMap<>();
        PeftConfig written = PeftConfigWriter.asWritten(config);
        for (Map.Entry<String, LoraLinear> e : layers.entrySet()) {
            String path = e.getKey();
            requireAgreement(config, written, path, e.getValue().config());
            mods.put(path, new AdapterModule(path, e.getValue().config(), e.getValue().loraA(), e.getValue().loraB()));
        }
        return new AdapterSet(config, mods, Map.of());
    }

    /**
     * Refuses module {@code path} with hyper-parameters {@code lc} when a reader of {@code config}
     * would refuse it or rebuild it differently: not admitted by target_modules, or another r, α,
     * scaling or dropout than the config gives the path, or than {@code written} (the config as
     * adapter_config.json stores it, pattern keys sorted) gives it.
     */
    private static void requireAgreement(PeftConfig config, PeftConfig written, String path, LoraConfig lc) {
        if (!config.admits(path)) {
            throw new IllegalArgumentException("module " + path + " is not targeted by target_modules " + config.targetModules()
                    + (config.excludeModules() == null ? "" : " (exclude_modules " + config.excludeModules() + ")")
                    + ": the saved adapter could not be loaded; add the module to target_modules");
        }
        if (lc.rank() != config.rankOf(path) || Double.compare(lc.alpha(), config.alphaOf(path)) != 0
                || lc.scaling() != config.scaling()) {
            throw new IllegalArgumentException("layer " + path + " has r=" + lc.rank() + " alpha=" + lc.alpha() + " "
                    + lc.scaling() + " but the config gives r=" + config.rankOf(path) + " alpha=" + config.alphaOf(path)
                    + " " + config.scaling() + " for it");
        }
        if (written.rankOf(path) != lc.rank() || Double.compare(written.alphaOf(path), lc.alpha()) != 0) {
            boolean rank = written.rankOf(path) != lc.rank();
            PatternMap<?> patterns = rank ? config.rankPattern() : config.alphaPattern();
            PatternMap<?> sorted = rank ? written.rankPattern() : written.alphaPattern();
            throw new IllegalArgumentException("layer " + path + " has " + (rank ? "r=" + lc.rank() : "alpha=" + lc.alpha())
                    + " from " + (rank ? "rank_pattern" : "alpha_pattern") + " key " + PeftConfigReader.quote(patterns.matchingKey(path))
                    + ", but adapter_config.json stores the pattern keys sorted (as PEFT does) and a reader takes the first match, "
                    + PeftConfigReader.quote(sorted.matchingKey(path)) + " -> " + (rank ? written.rankOf(path) : written.alphaOf(path))
                    + ": make the keys match exclusively (e.g. anchor them with ^) so their order does not matter");
        }
        if (Double.compare(lc.dropout(), config.loraDropout()) != 0) {
            throw new IllegalArgumentException("layer " + path + " has dropout " + lc.dropout() + " but the config gives lora_dropout="
                    + config.loraDropout() + ": use config.withDropout(" + lc.dropout() + ") so the file records the real value");
        }
    }

    /**
     * This set with {@code extras} (base tensor name → replacement) added.
     *
     * @param more base tensor name → replacement tensor (e.g. a trained modules_to_save weight);
     *             replaces an earlier extra of the same name
     * @return a new set with the same modules
     */
    public AdapterSet withExtras(Map<String, Tensor> more) {
        Map<String, Tensor> all = new LinkedHashMap<>(extras);
        all.putAll(Args.given("AdapterSet.withExtras", "more", more));
        return new AdapterSet(config, modules, all);
    }

    // ------------------------------------------------------------------ load

    /**
     * Loads a PEFT adapter folder, mapping its tensors (F32, BF16 or F16) into {@code arena}.
     * Checks: the config ({@link PeftConfigReader}); every key under {@code base_model.model.};
     * each module has both lora_A and lora_B, 2-D, of the rank the config gives its path; each
     * module is one the config targets; lora_B.bias tensors (PEFT's lora_bias) are all zero;
     * no other LoRA tensor kinds (DoRA magnitudes, embedding adapters).
     *
     * @param dir   a folder holding adapter_config.json and adapter_model.safetensors
     * @param arena owns the mapping: the set's tensors are valid until it closes
     * @return the adapter, its tensors zero-copy views of the file
     * @throws PeftFormatException when a check fails (naming the file, module or tensor)
     * @throws IOException if the files cannot be read
     * @throws IllegalArgumentException if dir or arena is null
     */
    public static AdapterSet load(Path dir, Arena arena) throws IOException {
        if (dir == null || arena == null) {
            throw new IllegalArgumentException("AdapterSet.load: " + (dir == null ? "dir" : "arena") + " is null");
        }
        if (!Files.isDirectory(dir)) {
            throw new PeftFormatException(dir + ": an adapter is a folder holding " + CONFIG_FILE + " and " + WEIGHTS_FILE);
        }
        Path weights = dir.resolve(WEIGHTS_FILE);
        if (!Files.exists(weights)) {   // a folder, device or pipe of that name is refused by SafetensorsFile, naming it
            boolean pickle = Files.isRegularFile(dir.resolve("adapter_model.bin"));
            throw new PeftFormatException(dir + ": no " + WEIGHTS_FILE
                    + (pickle ? " (adapter_model.bin pickles are not read; re-save the adapter with safetensors)" : ""));
        }
        PeftConfig config = PeftConfigReader.read(dir.resolve(CONFIG_FILE));
        SafetensorsFile file = SafetensorsFile.open(weights, arena);
        String src = weights.toString();
        Map<String, Tensor[]> pairs = new LinkedHashMap<>();
        Map<String, Tensor> extras = new LinkedHashMap<>();
        for (SafetensorsEntry e : file.entries()) {
            String key = e.name();
            if (!key.startsWith(PREFIX)) {
                throw new PeftFormatException(src + ": tensor " + PeftConfigReader.quote(key) + " does not start with \"" + PREFIX
                        + "\" (not a PEFT LoRA adapter key)");
            }
            if (!e.dtype().isComputable()) {
                throw new PeftFormatException(src + ": tensor " + PeftConfigReader.quote(key) + " has dtype " + e.dtypeName()
                        + "; adapter tensors must be F32, BF16 or F16");
            }
            String rest = key.substring(PREFIX.length());
            if ((rest.endsWith(A_SUFFIX) || rest.endsWith(B_SUFFIX) || rest.endsWith(B_BIAS_SUFFIX))
                    && !rest.matches("([^.]+\\.)+lora_[AB]\\.(weight|bias)")) {
                throw new PeftFormatException(src + ": tensor " + PeftConfigReader.quote(key)
                        + " does not name a module: expected " + PREFIX + "<module path>" + A_SUFFIX + " (or " + B_SUFFIX
                        + ") with no empty part in the path");
            }
            if (rest.endsWith(A_SUFFIX)) {
                pairs.computeIfAbsent(strip(rest, A_SUFFIX), k -> new Tensor[2])[0] = file.tensor(key);
            } else if (rest.endsWith(B_SUFFIX)) {
                pairs.computeIfAbsent(strip(rest, B_SUFFIX), k -> new Tensor[2])[1] = file.tensor(key);
            } else if (rest.endsWith(B_BIAS_SUFFIX)) {
                requireZeroBias(src, key, file.tensor(key));
            } else if (rest.contains("lora_magnitude_vector")) {
                throw new PeftFormatException(src + ": tensor " + PeftConfigReader.quote(key)
                        + " is a DoRA magnitude (use_dora); DoRA adapters are not supported");
            } else if (rest.matches("([^.]+\\.)+lora_[AB]\\.[^.]+\\.weight")) {
                // model.state_dict() names, e.g. q_proj.lora_A.default.weight: PEFT's save_pretrained drops the adapter name
                String name = rest.substring(0, rest.length() - ".weight".length());
                name = name.substring(name.lastIndexOf('.') + 1);
                throw new PeftFormatException(src + ": tensor " + PeftConfigReader.quote(key) + " carries the adapter name \""
                        + name + "\" (a name of PEFT's in-memory parameters, from model.state_dict()); an adapter file as"
                        + " save_pretrained writes it has none: expected " + PREFIX + "<module path>" + A_SUFFIX + " (or " + B_SUFFIX
                        + ")");
            } else if (rest.matches(".*(^|\\.)lora_[^.]*(\\..*)?$")) {
                throw new PeftFormatException(src + ": tensor " + PeftConfigReader.quote(key)
                        + " is not a lora_A.weight / lora_B.weight of a linear layer; this kind of LoRA tensor is not supported");
            } else {
                extras.put(rest, file.tensor(key));
            }
        }
        Map<String, AdapterModule> mods = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor[]> e : pairs.entrySet()) {
            mods.put(e.getKey(), module(src, config, e.getKey(), e.getValue()[0], e.getValue()[1]));
        }
        return new AdapterSet(config, mods, extras);
    }

    private static AdapterModule module(String src, PeftConfig config, String path, Tensor a, Tensor b) throws PeftFormatException {
        if (a == null || b == null) {
            throw new PeftFormatException(src + ": module " + path + " has " + (a == null ? "lora_B but no " + PREFIX + path + A_SUFFIX
                    : "lora_A but no " + PREFIX + path + B_SUFFIX));
        }
        if (a.rank() != 2 || b.rank() != 2 || a.dim(0) != b.dim(1)) {
            throw new PeftFormatException(src + ": module " + path + ": lora_A " + a.shapeString() + " and lora_B " + b.shapeString()
                    + " must be [r, d_in] and [d_out, r] with one r");
        }
        int r = config.rankOf(path);
        if (a.dim(0) != r) {
            String why = config.rankPattern().matchingKey(path) == null ? "r = " + r
                    : "rank_pattern " + PeftConfigReader.quote(config.rankPattern().matchingKey(path)) + " -> " + r;
            throw new PeftFormatException(src + ": module " + path + ": lora_A " + a.shapeString() + " has rank " + a.dim(0)
                    + " but adapter_config.json gives it " + why);
        }
        if (!config.admits(path)) {
            throw new PeftFormatException(src + ": module " + path + " has adapter weights but adapter_config.json does not target it"
                    + " (target_modules " + config.targetModules() + ")");
        }
        LoraConfig lc;
        try {
            lc = config.loraConfig(path, config.init(), 0);
        } catch (IllegalArgumentException e) {
            throw new PeftFormatException(src + ": module " + path + ": " + e.getMessage());
        }
        return new AdapterModule(path, lc, a, b);
    }

    private static void requireZeroBias(String src, String key, Tensor bias) throws PeftFormatException {
        for (long i = 0; i < bias.numel(); i++) {
            if (bias.get(i) != 0f) {
                throw new PeftFormatException(src + ": tensor " + PeftConfigReader.quote(key) + " is a non-zero LoRA bias "
                        + "(lora_bias: true, element " + i + " = " + bias.get(i) + "); lora_bias adapters are not supported");
            }
        }
    }

    private static String strip(String s, String suffix) {
        return s.substring(0, s.length() - suffix.length());
    }

    // ------------------------------------------------------------------ save

    /**
     * Saves in PEFT's layout: the tensors converted to {@code dtype} (F32 by default in PEFT;
     * BF16/F16 on request), metadata {@code {"format":"pt"}}, and the config. Both files are
     * written to a temporary folder first; a missing {@code dir} appears complete in one rename,
     * an existing folder gets each file replaced atomically.
     *
     * <p>Nothing is written for a set that {@link #load} would refuse or read back differently
     * (IllegalArgumentException naming the module or tensor): every module must be admitted by
     * the config's target_modules and have the r, α, scaling and lora_dropout the config gives
     * its path, also with the rank_pattern / alpha_pattern keys sorted as the file stores them;
     * an extra tensor must not be named like a LoRA tensor.
     *
     * @param dir   the adapter folder to write (created if absent)
     * @param dtype the dtype of every saved tensor (F32, BF16 or F16; narrowing rounds to nearest even)
     * @throws IOException if the folder or files cannot be written
     * @throws IllegalArgumentException if dir or dtype is null; naming the module or tensor when {@link #load} would refuse the set, when
     *                                  {@code dtype} cannot hold one of its finite values (F16 beyond ±65504), or when
     *                                  a tensor's memory was freed (the model that owns it closed)
     */
    public void save(Path dir, DType dtype) throws IOException {
        if (dir == null || dtype == null) {
            throw new IllegalArgumentException("AdapterSet.save: " + (dir == null ? "dir" : "dtype") + " is null");
        }
        validateForSave();
        requireAlive();
        requireRepresentable(dtype);
        try (StagedOutput out = StagedOutput.folder(dir, true)) {
            try {
                writeFiles(out.dir(), dtype);
            } catch (IOException e) {
                throw out.userFacing(e);
            }
            out.commit();
        }
    }

    /** The checks of {@link #save}: what this set writes, {@link #load} reads back as the same set. */
    void validateForSave() {
        PeftConfig written = PeftConfigWriter.asWritten(config);
        for (AdapterModule m : modules.values()) {
            requireAgreement(config, written, m.path(), m.config());
        }
        for (String name : extras.keySet()) {
            if (name.endsWith(A_SUFFIX) || name.endsWith(B_SUFFIX) || name.endsWith(B_BIAS_SUFFIX)
                    || name.matches(".*(^|\\.)lora_[^.]*(\\..*)?$")) {
                throw new IllegalArgumentException("extra tensor " + name + " is named like a LoRA tensor: a reader would take it "
                        + "for an adapter factor or refuse it");
            }
        }
    }

    /**
     * Refuses a save of a tensor whose memory was freed (the model or arena that owns it was closed), naming
     * the module or extra tensor, before anything is written: the converting writer would otherwise fail
     * inside with an error that names nothing.
     */
    void requireAlive() {
        for (AdapterModule m : modules.values()) {
            requireAlive("module " + m.path() + ": lora_A", m.loraA());
            requireAlive("module " + m.path() + ": lora_B", m.loraB());
        }
        for (Map.Entry<String, Tensor> e : extras.entrySet()) {
            requireAlive("extra tensor " + e.getKey(), e.getValue());
        }
    }

    private static void requireAlive(String what, Tensor t) {
        try {
            BackendChecks.usable(what, t);
        } catch (IllegalArgumentException e) {
            // a closed arena: the model or arena owning the tensor was closed; else its memory is confined to another thread
            throw new IllegalArgumentException(e.getMessage() + (e.getMessage().contains("arena is closed")
                    ? "; was the model or arena that owns it closed?" : "") + "; nothing was written", e);
        }
    }

    /**
     * Refuses a save in F16 or BF16 that would turn a finite value into ±Infinity (F16 holds up to
     * ±65504): the file would load, and the adapter's forward would return NaN. NaN and ±Infinity
     * already present are saved as they are.
     */
    void requireRepresentable(DType dtype) {
        if (dtype != DType.F16 && dtype != DType.BF16) {
            return;
        }
        for (AdapterModule m : modules.values()) {
            requireRepresentable("module " + m.path() + ": lora_A", m.loraA(), dtype);
            requireRepresentable("module " + m.path() + ": lora_B", m.loraB(), dtype);
        }
        for (Map.Entry<String, Tensor> e : extras.entrySet()) {
            requireRepresentable("extra tensor " + e.getKey(), e.getValue(), dtype);
        }
    }

    private static void requireRepresentable(String what, Tensor t, DType dtype) {
        long n = t.numel();
        for (long i = 0; i < n; i++) {
            float v = t.get(i);
            if (dtype.overflows(v)) {
                throw new IllegalArgumentException(what + " holds " + v + " (element " + i + "), beyond " + dtype + "'s range"
                        + (dtype == DType.F16 ? " (±65504)" : "") + ": it would be saved as Infinity; save as F32"
                        + (dtype == DType.F16 ? " or BF16" : "") + ", or fix the weights; nothing was written");
            }
        }
    }

    /** Writes the two files into an existing folder (each file atomically). */
    void writeFiles(Path dir, DType dtype) throws IOException {
        SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
        SafetensorsDtype st = SafetensorsDtype.of(dtype);
        for (AdapterModule m : modules.values()) {
            w.add(SafetensorsWriter.Item.computed(PREFIX + m.path() + A_SUFFIX, st, m.loraA().shape(), TensorBytes.convert(m.loraA(), dtype)));
            w.add(SafetensorsWriter.Item.computed(PREFIX + m.path() + B_SUFFIX, st, m.loraB().shape(), TensorBytes.convert(m.loraB(), dtype)));
        }
        for (Map.Entry<String, Tensor> e : extras.entrySet()) {
            w.add(SafetensorsWriter.Item.computed(PREFIX + e.getKey(), st, e.getValue().shape(), TensorBytes.convert(e.getValue(), dtype)));
        }
        w.write(dir.resolve(WEIGHTS_FILE));
        Path tmp = dir.resolve("." + CONFIG_FILE + ".tmp");
        Files.writeString(tmp, PeftConfigWriter.toJson(config), StandardCharsets.UTF_8);
        Files.move(tmp, dir.resolve(CONFIG_FILE), java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    // ------------------------------------------------------------------ use

    /**
     * A trainable layer for module {@code path} over its base {@code weight} [d_out, d_in] (for a
     * fan_in_fan_out model the caller passes W transposed) with this adapter's A and B copied in,
     * its r, α, scaling and dropout from the config, dropout keyed by {@code seed} and {@code layerId}.
     *
     * @param path    a module of this set
     * @param weight  its base W [d_out, d_in] (borrowed)
     * @param bias    its base bias [d_out], or null
     * @param backend the backend the layer runs on
     * @param layerId the layer's dropout id
     * @param seed    the dropout seed
     * @return a new layer holding copies of the module's A and B
     * @throws IllegalArgumentException when the set has no such module, the weight's shape does not match, or the
     *                                  memory of its lora_A or lora_B was freed (naming the module and the tensor)
     */
    public LoraLinear layer(String path, Tensor weight, Tensor bias, Backend backend, int layerId, long seed) {
        AdapterModule m = module(path);
        Args.given("AdapterSet.layer", "weight", weight);
        Args.given("AdapterSet.layer", "backend", backend);
        if (!weight.sameShape(m.dOut(), m.dIn())) {
            throw new IllegalArgumentException("module " + path + ": weight " + weight.shapeString() + " is not [d_out, d_in] = ["
                    + m.dOut() + ", " + m.dIn() + "]" + (config.fanInFanOut() ? " (fan_in_fan_out: pass W transposed)" : ""));
        }
        try {
            BackendChecks.usable("lora_A", m.loraA());
            BackendChecks.usable("lora_B", m.loraB());
        } catch (IllegalArgumentException e) {  // the arena this set was loaded or built in was closed
            throw new IllegalArgumentException("module " + path + ": " + e.getMessage(), e);
        }
        return LoraLinear.withAdapter(weight, bias, m.loraA(), m.loraB(), config.loraConfig(path, config.init(), seed), backend, layerId);
    }

    /**
     * The config every module's r, α and γ come from.
     *
     * @return the PEFT config
     */
    public PeftConfig config() {
        return config;
    }

    /**
     * Module path → adapter, in order (unmodifiable).
     *
     * @return the modules
     */
    public Map<String, AdapterModule> modules() {
        return modules;
    }

    /**
     * The adapter of {@code path}.
     *
     * @param path the module path
     * @return its adapter
     * @throws IllegalArgumentException naming the path when the set has no such module
     */
    public AdapterModule module(String path) {
        AdapterModule m = modules.get(path);
        if (m == null) {
            throw new IllegalArgumentException("no adapter for module " + path + " (" + modules.size() + " modules)");
        }
        return m;
    }

    /**
     * Base tensor name → replacement tensor (unmodifiable).
     *
     * @return the extras, empty when the adapter has none
     */
    public Map<String, Tensor> extras() {
        return extras;
    }

    /**
     * Σ r·(d_in + d_out) over the modules.
     *
     * @return the number of LoRA scalars
     */
    public long loraParameterCount() {
        long n = 0;
        for (AdapterModule m : modules.values()) {
            n += m.parameterCount();
        }
        return n;
    }

    /**
     * Elements of the extra tensors.
     *
     * @return Σ numel over the extras, 0 when none
     */
    public long extraParameterCount() {
        long n = 0;
        for (Tensor t : extras.values()) {
            n += t.numel();
        }
        return n;
    }

    /**
     * The dtypes the tensors are held in (usually one).
     *
     * @return each dtype once, in order of first appearance
     */

    public List<DType> dtypes() {
        List<DType> out = new ArrayList<>();
        for (AdapterModule m : modules.values()) {
            addOnce(out, m.loraA().dtype());
            addOnce(out, m.loraB().dtype());
        }
        for (Tensor t : extras.values()) {
            addOnce(out, t.dtype());
        }
        return out;
    }

    private static void addOnce(List<DType> list, DType d) {
        if (!list.contains(d)) {
            list.add(d);
        }
    }

    private static String preview(List<String> names) {
        return names.size() <= 3 ? names.toString() : names.subList(0, 3) + "...";
    }
}
