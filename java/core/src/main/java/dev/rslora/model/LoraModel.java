package dev.rslora.model;

import dev.rslora.backend.Backend;
import dev.rslora.backend.GradMode;
import dev.rslora.core.Init;
import dev.rslora.core.LoraConfig;
import dev.rslora.core.LoraLinear;
import dev.rslora.internal.Args;
import dev.rslora.peft.AdapterModule;
import dev.rslora.peft.AdapterSet;
import dev.rslora.peft.BaseCheckpoint;
import dev.rslora.peft.ModuleSelector;
import dev.rslora.peft.PeftConfig;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.train.Parameter;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * A LoRA adapter over a whole model, as PEFT's {@code get_peft_model(model, LoraConfig(...))}: a
 * set of named frozen weights, a {@link PeftConfig} ({@code target_modules}, {@code r},
 * {@code lora_alpha}, {@code use_rslora}, {@code lora_dropout}, {@code rank_pattern},
 * {@code alpha_pattern}; build one with {@link PeftConfig#builder()}) and one trainable
 * {@link LoraLinear} per targeted module.
 *
 * <pre>
 *   weights: "&lt;path&gt;.weight" W [d_out, d_in] (frozen, borrowed), optional "&lt;path&gt;.bias" [d_out]
 *   module p is adapted iff the config targets it (PEFT's rules: {@link PeftConfig#targets})
 *   r(p), α(p): rank_pattern / alpha_pattern, else r / lora_alpha;  γ(p) = α(p)/√r(p) (use_rslora) or α(p)/r(p)
 *   A(p) [r(p), d_in] initialised per init_lora_weights, B(p) [d_out, r(p)] = 0, F32
 * </pre>
 *
 * <p>Model-wide switches, as PEFT's and PyTorch's: {@link #train(boolean)} (eval mode: no dropout),
 * {@link #setGradMode} (assign or accumulate dA, dB), {@link #zeroGrad()}, {@link #merge()} / {@link #unmerge()}
 * (PEFT's {@code merge_adapter()} / {@code unmerge_adapter()}); a switch that a layer refuses (merged, disabled,
 * read-only W, closed on its own) changes no layer. One thread at a time: a layer that another thread is using
 * through {@link #layer} at that moment refuses its part of a switch after others have switched.
 * Adapters can be switched off ({@link #setAdaptersEnabled}, {@link #disableAdapters()}: every
 * layer is its base path {@code Y = X·Wᵀ + b} exactly, e.g. for DPO's reference log-probs),
 * saved as a PEFT folder ({@link #save}: validated before anything is written, so what is saved
 * loads) and loaded back over the same weights ({@link #load}). A run resumes bit for bit from three files: the
 * adapter, the optimizer's state file, and the layers' dropout steps ({@link #saveDropoutSteps} /
 * {@link #loadDropoutSteps}), which neither of the others holds; the model is then loaded with the run's seed.
 * Callers without off-heap code use {@link #forward(String, float[][])} / {@link #backward(String, float[][])} and
 * {@link #wrapArrays} with {@code float[][]}; everyone else uses {@link #layer(String)} with
 * {@link Tensor}s. One thread at a time (checked for the heap-array forward and backward and merge/unmerge, as
 * {@link LoraLinear} checks its calls: a concurrent one throws); {@link #close()} frees the layers and buffers.
 */
public final class LoraModel implements AutoCloseable {
    private static final String WEIGHT = ".weight";
    private static final String BIAS = ".bias";

    private final PeftConfig config;
    private final Map<String, LoraLinear> layers;
    private final List<String> untargeted;
    private final Arena owned;                       // weights copied from heap arrays, or null
    private final long seed;                         // every layer's dropout (and initialisation) seed
    private final Map<String, HeapBuffers> heap = new LinkedHashMap<>();
    /** The thread inside a heap-array forward or backward (they share the buffers in {@link #heap}), or null. */
    private final AtomicReference<Thread> user = new AtomicReference<>();
    private boolean closed;

    private LoraModel(PeftConfig config, Map<String, LoraLinear> layers, List<String> untargeted, Arena owned, long seed) {
        this.config = config;
        this.seed = seed;
        this.layers = Collections.unmodifiableMap(layers);
        this.untargeted = List.copyOf(untargeted);
        this.owned = owned;
    }

    // ------------------------------------------------------------------ creation

    /**
     * A new adapter on every module of {@code weights} that {@code config} targets: A initialised
     * per the config's init_lora_weights from {@code seed} and the module's index, B = 0 (so the
     * model starts as exactly the base model), dropout keyed by {@code seed}.
     *
     * @param weights state-dict names → tensors: {@code <path>.weight} [d_out, d_in] for every linear
     *                module, optionally {@code <path>.bias} [d_out]; other entries (1-D norms,
     *                embeddings) are not adapted. Borrowed: the caller's arena must outlive the model.
     *                Layers are made in the map's order (a LinkedHashMap's insertion order, a TreeMap's), or
     *                in name order for a map without one (Map.of, HashMap): layer ids, A's initialisation and
     *                {@link #parameters()} follow it, the same in every JVM.
     * @param config  which modules to adapt and their r, α, scaling, dropout and initialisation
     * @param backend the backend every layer runs on
     * @param seed    seeds A's initialisation (with each module's index) and the dropout streams
     * @return the model, in training mode with every adapter enabled
     * @throws IllegalArgumentException when the config targets no 2-D weight (PEFT's "all-linear" shorthand is not
     *                                  resolved here: list the modules), uses fan_in_fan_out, or asks for an
     *                                  init_lora_weights this library does not implement (false, "eva", "orthogonal":
     *                                  {@link PeftConfig#initForNewWeights}), or the map or a tensor of it is null (naming
     *                                  its key)
     */
    public static LoraModel wrap(Map<String, Tensor> weights, PeftConfig config, Backend backend, long seed) {
        Args.given("LoraModel.wrap", "weights", weights);
        return build(weights, config, backend, seed, null, null);
    }

    /**
     * {@link #wrap} over heap arrays: each {@code <path>.weight} is a {@code float[d_out][d_in]} and each
     * {@code <path>.bias} a {@code float[1][d_out]}, copied (F32) into memory this model owns.
     *
     * @param weights state-dict names → rectangular heap arrays (copied; the caller may reuse them)
     * @param config  which modules to adapt and their hyper-parameters
     * @param backend the backend every layer runs on
     * @param seed    seeds A's initialisation and the dropout streams
     * @return the model; {@link #close()} also frees the copied weights
     * @throws IllegalArgumentException as {@link #wrap(Map, PeftConfig, Backend, long)}, or for a ragged array
     */
    public static LoraModel wrapArrays(Map<String, float[][]> weights, PeftConfig config, Backend backend, long seed) {
        Args.given("LoraModel.wrapArrays", "weights", weights);
        Arena arena = Arena.ofShared();
        try {
            return build(copyArrays(weights, arena), config, backend, seed, null, arena);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /**
     * {@link #wrap} over the linear modules of a base checkpoint (one safetensors file or a shard
     * folder, memory-mapped in the caller's arena). The mapped weights are read-only: a layer's
     * {@code merge()} is refused (merge the saved adapter into a checkpoint file with
     * {@link dev.rslora.peft.CheckpointMerge}, or wrap writable copies of the weights).
     *
     * @param base    the open checkpoint; its arena must outlive the model
     * @param config  which modules to adapt and their hyper-parameters
     * @param backend the backend every layer runs on
     * @param seed    seeds A's initialisation and the dropout streams
     * @return the model over the checkpoint's 2-D {@code .weight} tensors (and their biases)
     * @throws IllegalArgumentException if base is null, or as {@link #wrap(Map, PeftConfig, Backend, long)}
     */
    public static LoraModel wrap(BaseCheckpoint base, PeftConfig config, Backend backend, long seed) {
        Args.given("LoraModel.wrap", "base", base);
        Map<String, Tensor> weights = new LinkedHashMap<>();
        for (String path : base.linearModules()) {
            weights.put(path + WEIGHT, base.tensor(path + WEIGHT));
            if (base.contains(path + BIAS)) {
                weights.put(path + BIAS, base.tensor(path + BIAS));
            }
        }
        return wrap(weights, config, backend, seed);
    }

    /**
     * The PEFT adapter folder {@code dir} over {@code weights}: its config, and every module's A and B
     * copied into a layer (in the file's dtype). Refused, naming the module, when the folder holds a
     * module the weights lack, when the config targets a module of the weights that the folder has no
     * adapter for, or when it holds extra tensors (modules_to_save) that a model of linear adapters
     * cannot hold (use {@link AdapterSet} for those).
     *
     * @param dir     a folder with {@code adapter_config.json} and {@code adapter_model.safetensors}
     * @param weights the base weights, as for {@link #wrap(Map, PeftConfig, Backend, long)} (borrowed)
     * @param backend the backend every layer runs on
     * @param seed    seeds the dropout streams (A and B come from the folder)
     * @return the model holding the folder's adapter
     * @throws IOException if the folder cannot be read or is not a valid PEFT adapter
     * @throws IllegalArgumentException if dir or weights is null, or the adapter does not fit the weights (the message
     *                                  names the module)
     */
    public static LoraModel load(Path dir, Map<String, Tensor> weights, Backend backend, long seed) throws IOException {
        Args.given("LoraModel.load", "dir", dir);
        Args.given("LoraModel.load", "weights", weights);
        try (Arena files = Arena.ofShared()) {
            AdapterSet set = AdapterSet.load(dir, files);
            return build(weights, set.config(), backend, seed, set, null);
        }
    }

    /**
     * {@link #load} over heap arrays (see {@link #wrapArrays}).
     *
     * @param dir     a PEFT adapter folder
     * @param weights the base weights as heap arrays (copied)
     * @param backend the backend every layer runs on
     * @param seed    seeds the dropout streams
     * @return the model holding the folder's adapter
     * @throws IOException if the folder cannot be read or is not a valid PEFT adapter
     * @throws IllegalArgumentException if dir or weights is null, or the adapter does not fit the weights
     */
    public static LoraModel loadArrays(Path dir, Map<String, float[][]> weights, Backend backend, long seed) throws IOException {
        Args.given("LoraModel.loadArrays", "dir", dir);
        Args.given("LoraModel.loadArrays", "weights", weights);
        Arena arena = Arena.ofShared();
        try (Arena files = Arena.ofShared()) {
            AdapterSet set = AdapterSet.load(dir, files);
            return build(copyArrays(weights, arena), set.config(), backend, seed, set, arena);
        } catch (IOException | RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /**
     * The map in its own order when it has one (a LinkedHashMap, a TreeMap), else sorted by name: layer ids, A's
     * initialisation and parameters() follow this order, and a Map.of or HashMap iterates in an order that can
     * differ from one JVM to the next (the same seed gave another model, and a resumed run's state was refused).
     */
    static <V> Map<String, V> ordered(Map<String, V> weights) {
        return weights instanceof java.util.SequencedMap<String, V> ? weights : new java.util.TreeMap<>(weights);
    }

    private static Map<String, Tensor> copyArrays(Map<String, float[][]> weights, Arena arena) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Map.Entry<String, float[][]> e : ordered(weights).entrySet()) {
            Tensor t;
            try {
                t = Tensor.fromMatrix(arena, DType.F32, e.getValue());
            } catch (IllegalArgumentException ex) {
                throw new IllegalArgumentException("weight " + e.getKey() + ": " + ex.getMessage(), ex);
            }
            if (e.getKey().endsWith(BIAS)) {
                if (t.dim(0) != 1) {
                    throw new IllegalArgumentException("bias " + e.getKey() + " must be float[1][d_out], got float[" + t.dim(0) + "][" + t.dim(1) + "]");
                }
                t = Tensor.wrap(t.segment(), DType.F32, t.dim(1));
            }
            out.put(e.getKey(), t);
        }
        return out;
    }

    /** Builds the layers: new adapters when {@code loaded} is null, else the loaded ones (checked against the weights). */
    private static LoraModel build(Map<String, Tensor> weights, PeftConfig config, Backend backend, long seed,
                                   AdapterSet loaded, Arena owned) {
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(backend, "backend");
        if (config.fanInFanOut()) {
            throw new IllegalArgumentException("fan_in_fan_out is set: pass the weights transposed to [d_out, d_in] and a config "
                    + "without fan_in_fan_out");
        }
        Map<String, Tensor> linear = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : ordered(weights).entrySet()) {
            if (e.getValue() == null) {
                throw new IllegalArgumentException("weight " + e.getKey() + " is null: every entry of the map must hold a tensor");
            }
            if (e.getKey().endsWith(WEIGHT) && e.getValue().rank() == 2) {
                linear.put(e.getKey().substring(0, e.getKey().length() - WEIGHT.length()), e.getValue());
            }
        }
        List<String> targeted = new ArrayList<>();
        List<String> untargeted = new ArrayList<>();
        for (String path : linear.keySet()) {
            (config.targets(path) ? targeted : untargeted).add(path);
        }
        if (loaded != null) {
            checkLoadedModules(loaded, linear.keySet(), targeted);
            // weight order (as wrap), not the file's name order: layer ids (dropout masks) and parameters()
            // must match the model that was saved, or its optimizer state cannot be restored
            targeted = new ArrayList<>(linear.keySet());
            targeted.retainAll(loaded.modules().keySet());
        } else if (targeted.isEmpty()) {
            ModuleSelector t = config.targetModules();
            boolean allLinear = t != null && (t.isAllLinear() || t.nameList().stream().anyMatch(ModuleSelector.ALL_LINEAR::equalsIgnoreCase));
            throw new IllegalArgumentException("target_modules " + t + (allLinear ? " is PEFT's \"all-linear\" shorthand, which PEFT resolves"
                    + " from the model's layer classes and output layer; a LoraModel sees only weight names: list the modules to adapt"
                    + " among the " : " matches none of the ") + linear.size() + " 2-D weights (e.g. "
                    + preview(new ArrayList<>(linear.keySet())) + ")");
        }
        Init init = loaded == null ? config.initForNewWeights() : null;  // refused before any layer is made
        Map<String, LoraLinear> layers = new LinkedHashMap<>();
        try {
            int id = 0;
            for (String path : targeted) {
                Tensor w = linear.get(path);
                Tensor b = weights.get(path + BIAS);
                try {
                    if (loaded != null) {
                        layers.put(path, loaded.layer(path, w, b, backend, id, seed));
                    } else {
                        LoraConfig lc = config.loraConfig(path, init, seed);
                        layers.put(path, LoraLinear.create(w, b, lc, DType.F32, backend, id));
                    }
                } catch (IllegalArgumentException e) {
                    if (e.getMessage() != null && e.getMessage().contains(path)) {
                        throw e;
                    }
                    // e.g. a bias that does not fit its weight: the layer names the shapes, not the module
                    throw new IllegalArgumentException("module " + path + ": " + e.getMessage(), e);
                }
                id++;
            }
        } catch (RuntimeException | Error e) {
            layers.values().forEach(LoraLinear::close);
            throw e;
        }
        untargeted.removeAll(layers.keySet());
        return new LoraModel(config, layers, untargeted, owned, seed);
    }

    private static void checkLoadedModules(AdapterSet loaded, Set<String> linear, List<String> targeted) {
        if (!loaded.extras().isEmpty()) {
            throw new IllegalArgumentException("the adapter holds extra tensors " + preview(new ArrayList<>(loaded.extras().keySet()))
                    + " (modules_to_save) that a LoraModel does not hold; use AdapterSet for it");
        }
        for (String path : loaded.modules().keySet()) {
            if (!linear.contains(path)) {
                throw new IllegalArgumentException("the adapter has module " + path + " but the weights have no 2-D " + path + WEIGHT
                        + " (" + linear.size() + " linear weights, e.g. " + preview(new ArrayList<>(linear)) + ")");
            }
        }
        for (String path : targeted) {
            if (!loaded.modules().containsKey(path)) {
                throw new IllegalArgumentException("the adapter's target_modules " + loaded.config().targetModules() + " target module "
                        + path + " of the weights, but the adapter has no lora_A/lora_B for it");
            }
        }
    }

    private static String preview(List<String> names) {
        return names.size() <= 3 ? names.toString() : names.subList(0, 3) + "...";
    }

    // ------------------------------------------------------------------ structure

    /**
     * The config every module's r, α, γ and dropout come from.
     *
     * @return the PEFT config (what {@link #save} writes as adapter_config.json)
     */
    public PeftConfig config() {
        return config;
    }

    /**
     * Adapted module path → its layer, in weight order (unmodifiable).
     *
     * @return the layers, keyed by module path (e.g. {@code model.layers.0.self_attn.q_proj})
     * @throws IllegalStateException if the model is closed
     */
    public Map<String, LoraLinear> layers() {
        checkOpen();
        return layers;
    }

    /**
     * The layer of adapted module {@code path}.
     *
     * @param path the module path, without {@code .weight}
     * @return its layer
     * @throws IllegalArgumentException naming the path when it is not adapted (and why)
     */
    public LoraLinear layer(String path) {
        checkOpen();
        if (path == null) {
            throw new IllegalArgumentException("module path is null (adapted modules: " + preview(new ArrayList<>(layers.keySet())) + ")");
        }
        LoraLinear l = layers.get(path);
        if (l == null) {
            throw new IllegalArgumentException("module " + path + " has no adapter"
                    + (untargeted.contains(path) ? " (target_modules " + config.targetModules() + " does not target it)"
                    : " (adapted modules: " + preview(new ArrayList<>(layers.keySet())) + ")"));
        }
        return l;
    }

    /**
     * The linear modules of the weights that the config does not target (frozen, not held by this model).
     *
     * @return their paths, in weight order (unmodifiable; empty when every linear module is adapted)
     */
    public List<String> untargetedModules() {
        return untargeted;
    }

    /**
     * The trainable tensors for an optimizer: {@code <path>.lora_A.weight} and {@code <path>.lora_B.weight}
     * of every module, with their gradients ({@link Parameter#of}).
     *
     * @return two parameters per adapted module, in weight order (live tensors, not copies)
     */
    public List<Parameter> parameters() {
        checkOpen();
        List<Parameter> out = new ArrayList<>();
        layers.forEach((path, l) -> out.addAll(Parameter.of(l, path)));
        return out;
    }

    /**
     * Σ r·(d_in + d_out) over the adapted modules.
     *
     * @return the number of trainable scalars
     */
    public long trainableParameterCount() {
        long n = 0;
        for (LoraLinear l : layers().values()) {
            n += l.loraA().numel() + l.loraB().numel();
        }
        return n;
    }

    /**
     * Sets every layer's dA and dB to zero (PyTorch's {@code zero_grad()}).
     *
     * @throws IllegalStateException if the model is closed
     */
    public void zeroGrad() {
        requireLayersOpen("no gradient was zeroed");
        layers.values().forEach(LoraLinear::zeroGrad);
    }

    /**
     * Training mode (dropout on, each training forward advancing its layer's dropout step) or eval mode
     * (off), for every layer (PyTorch's {@code train()} / {@code eval()}).
     *
     * @param on true for training mode, false for eval mode
     * @throws IllegalStateException if the model is closed
     */
    public void train(boolean on) {
        requireLayersOpen("no layer's mode was changed");
        layers.values().forEach(l -> l.train(on));
    }

    /**
     * Whether every layer is in training mode.
     *
     * @return true when every layer applies dropout (as after {@code train(true)}, the state of a new model)
     * @throws IllegalStateException if the model is closed
     */
    public boolean isTraining() {
        return layers().values().stream().allMatch(LoraLinear::isTraining);
    }

    /**
     * Whether every layer's backward assigns (ASSIGN, the default) or accumulates (ACCUMULATE, for micro-batches)
     * dA and dB.
     *
     * @param mode the mode of every layer
     * @throws IllegalArgumentException if mode is null (no layer is changed)
     * @throws IllegalStateException if the model is closed
     */
    public void setGradMode(GradMode mode) {
        if (mode == null) {
            throw new IllegalArgumentException("grad mode is null: ASSIGN or ACCUMULATE");
        }
        requireLayersOpen("no layer's grad mode was changed");
        layers.values().forEach(l -> l.setGradMode(mode));
    }

    // ------------------------------------------------------------------ merge / unmerge

    /**
     * Whether every layer has its adapter merged into W ({@link #merge()}).
     *
     * @return true between merge() and unmerge() (false when only some layers were merged through {@link #layer})
     * @throws IllegalStateException if the model is closed
     */
    public boolean isMerged() {
        return layers().values().stream().allMatch(LoraLinear::isMerged);
    }

    /**
     * Merges every adapter into its W (PEFT's {@code merge_adapter()}): {@code W ← round(W + γ·B·A)} per layer
     * ({@link LoraLinear#merge()}); forward is then the base path alone, on the merged W, and backward is refused
     * until {@link #unmerge()}. All or nothing: every layer is checked before any W is written, and the first
     * refusal names its module.
     *
     * @throws IllegalStateException if a layer is already merged or its adapter disabled (naming the module), another
     *                               thread is in this model's heap-array forward or backward, or the model is closed
     * @throws IllegalArgumentException if a W is read-only, e.g. memory-mapped by {@link #wrap(BaseCheckpoint, PeftConfig,
     *                                  Backend, long)}, or a merged element would not be finite in W's dtype (naming
     *                                  the module and the element; on the {@code reference} and {@code cpu} backends
     *                                  every element of every layer is checked first, {@link LoraLinear#checkMerge()});
     *                                  if a layer's merge still fails (an allocation, or the {@code cuda} backend's
     *                                  element check), the layers merged before it are unmerged again (W as before up
     *                                  to the rounding of W + ΔW − ΔW)
     */
    public void merge() {
        enter();
        try {
            requireLayersOpen("no layer was merged");
            for (Map.Entry<String, LoraLinear> e : layers().entrySet()) {
                LoraLinear l = e.getValue();
                if (l.isMerged()) {
                    throw new IllegalStateException("module " + e.getKey() + ": already merged (merge() twice, or merged through"
                            + " layer(\"" + e.getKey() + "\")); no layer was merged");
                }
                if (!l.isAdapterEnabled()) {
                    throw new IllegalStateException("module " + e.getKey() + ": the adapter is disabled: enable the adapters"
                            + " before merging; no layer was merged");
                }
                if (l.weight().isReadOnly()) {
                    throw new IllegalArgumentException("module " + e.getKey() + ": weight " + l.weight().shapeString() + " is"
                            + " read-only memory (e.g. memory-mapped from a checkpoint): merge into a checkpoint file with"
                            + " CheckpointMerge, or wrap writable copies of the weights; no layer was merged");
                }
            }
            // every merged element of every layer is checked before any W is written: a layer refused after others
            // were merged would leave them unmerged again only up to rounding (W + ΔW − ΔW, in W's dtype)
            for (Map.Entry<String, LoraLinear> e : layers().entrySet()) {
                try {
                    e.getValue().checkMerge();
                } catch (IllegalArgumentException ex) {
                    throw new IllegalArgumentException("module " + e.getKey() + ": " + ex.getMessage()
                            + "; no layer was merged", ex);
                }
            }
            everyLayerOrNone(LoraLinear::merge, LoraLinear::unmerge);
        } finally {
            exit();
        }
    }

    /**
     * Subtracts every merged adapter from its W again (PEFT's {@code unmerge_adapter()}):
     * {@code W ← round(W − γ·B·A)} with the A and B each layer merged ({@link LoraLinear#unmerge()}). All or
     * nothing: refused, naming the module, when a layer is not merged, before any W is written.
     *
     * @throws IllegalStateException if a layer is not merged, another thread is in this model's heap-array forward
     *                               or backward, or the model is closed
     */
    public void unmerge() {
        enter();
        try {
            requireLayersOpen("no layer was unmerged");
            for (Map.Entry<String, LoraLinear> e : layers().entrySet()) {
                if (!e.getValue().isMerged()) {
                    throw new IllegalStateException("module " + e.getKey() + ": not merged; no layer was unmerged");
                }
            }
            everyLayerOrNone(LoraLinear::unmerge, LoraLinear::merge);
        } finally {
            exit();
        }
    }

    // ------------------------------------------------------------------ dropout steps (exact resume)

    /**
     * Every layer's dropout step: the step its next training forward draws its mask with ({@link LoraLinear#step()};
     * each training forward with dropout advances it). Neither {@link #save} nor an optimizer's state file holds it:
     * a resumed run that does not restore it draws the masks of the run's first steps again.
     *
     * @return module path → step, in weight order (an unmodifiable copy)
     * @throws IllegalStateException if the model is closed
     */
    public Map<String, Long> dropoutSteps() {
        Map<String, Long> out = new LinkedHashMap<>();
        layers().forEach((path, l) -> out.put(path, l.step()));
        return Collections.unmodifiableMap(out);
    }

    /**
     * Sets every layer's dropout step from {@link #dropoutSteps()} of the same model (or of the run being resumed).
     * All or nothing: checked before any layer is changed.
     *
     * @param steps module path → step (≥ 0), exactly the adapted modules of this model
     * @throws IllegalArgumentException if steps is null, lacks an adapted module or names one this model does not
     *                                  adapt (naming them), or holds a null or negative step (naming its module)
     * @throws IllegalStateException if the model is closed
     */
    public void restoreDropoutSteps(Map<String, Long> steps) {
        if (steps == null) {
            throw new IllegalArgumentException("dropout steps are null (expected one step per adapted module: "
                    + preview(new ArrayList<>(layers().keySet())) + ")");
        }
        requireSameModules("dropout steps", steps.keySet());
        for (Map.Entry<String, Long> e : steps.entrySet()) {
            if (e.getValue() == null || e.getValue() < 0) {
                throw new IllegalArgumentException("dropout step of module " + e.getKey() + " is " + e.getValue()
                        + " (expected ≥ 0); no step was restored");
            }
        }
        requireLayersOpen("no step was restored");
        layers.forEach((path, l) -> l.setStep(steps.get(path)));
    }

    /** Refuses {@code names} unless they are exactly the adapted modules, naming the missing and the unknown ones. */
    private void requireSameModules(String what, Set<String> names) {
        List<String> missing = new ArrayList<>(layers().keySet());
        missing.removeAll(names);
        List<String> unknown = new ArrayList<>(names);
        unknown.removeAll(layers.keySet());
        if (!missing.isEmpty() || !unknown.isEmpty()) {
            throw new IllegalArgumentException(what + " do not match this model's " + layers.size() + " adapted modules"
                    + (missing.isEmpty() ? "" : ": missing " + names(missing))
                    + (unknown.isEmpty() ? "" : (missing.isEmpty() ? ": " : "; ") + "not adapted here " + names(unknown))
                    + "; nothing was restored");
        }
    }

    /** Up to 5 names, then how many in all. */
    private static String names(List<String> names) {
        return names.size() <= 5 ? names.toString() : names.subList(0, 5) + "... (" + names.size() + " in all)";
    }

    /**
     * Writes every layer's dropout step, seed and layer id to {@code file}: with the adapter ({@link #save}) and the
     * optimizer's state file, what a run stopped here needs to resume bit for bit ({@link #loadDropoutSteps}). The
     * file is a safetensors file holding metadata only (format {@code rslora.dropout}, version 2; keys
     * {@code seed}, {@code layer_ids} and {@code steps}, the last two JSON objects of module path → integer, and
     * {@code metadata_crc32}, a CRC-32 of the others that {@link #loadDropoutSteps} checks), written atomically. It
     * may sit inside the adapter folder: PEFT and {@link #load} read only {@code adapter_config.json} and
     * {@code adapter_model.safetensors}.
     *
     * @param file the file to write (replaced atomically if it exists; its folder must exist)
     * @throws IOException if the file cannot be written (nothing is left behind)
     * @throws IllegalArgumentException if file is null
     * @throws IllegalStateException if the model is closed
     */
    public void saveDropoutSteps(Path file) throws IOException {
        if (file == null) {
            throw new IllegalArgumentException("dropout-steps file is null");
        }
        Map<String, Integer> ids = new LinkedHashMap<>();
        layers().forEach((path, l) -> ids.put(path, l.layerId()));
        DropoutStepsFile.write(new DropoutStepsFile.Saved(seed, ids, dropoutSteps()), file);
    }

    /**
     * Restores the dropout steps {@link #saveDropoutSteps} wrote, after checking that they fit: the same adapted
     * modules, each with the same layer id, and the same dropout seed (a mismatch would draw other masks than the
     * saved run, silently). Checked before any layer is changed.
     *
     * @param file a file written by {@link #saveDropoutSteps}
     * @throws IOException if the file cannot be read or is not a valid dropout-steps file, its metadata checksum
     *                     included (naming the file and what is wrong; version 1 files, written before the
     *                     checksum, still load)
     * @throws IllegalArgumentException if the modules differ (naming them), a module's layer id differs (weights
     *                                  passed in another order), or the seed differs
     * @throws IllegalStateException if the model is closed
     */
    public void loadDropoutSteps(Path file) throws IOException {
        if (file == null) {
            throw new IllegalArgumentException("dropout-steps file is null");
        }
        checkOpen();
        DropoutStepsFile.Saved saved = DropoutStepsFile.read(file);
        requireSameModules(file + ": the dropout steps", saved.steps().keySet());
        for (Map.Entry<String, LoraLinear> e : layers.entrySet()) {
            int id = saved.layerIds().get(e.getKey());
            if (id != e.getValue().layerId()) {
                throw new IllegalArgumentException(file + ": module " + e.getKey() + " had layer id " + id + ", here "
                        + e.getValue().layerId() + " (the weights are in another order than in the saved run, so its"
                        + " dropout masks would differ); nothing was restored");
            }
        }
        if (saved.seed() != seed) {
            throw new IllegalArgumentException(file + ": the saved run's dropout seed is " + saved.seed() + ", this model's "
                    + seed + " (pass the seed of the saved run to load/wrap); nothing was restored");
        }
        restoreDropoutSteps(saved.steps());
    }

    // ------------------------------------------------------------------ enable / disable

    /**
     * Whether every layer adds its adapter term.
     *
     * @return true when every adapter is enabled (also for a model of no layers)
     */
    public boolean adaptersEnabled() {
        return layers().values().stream().allMatch(LoraLinear::isAdapterEnabled);
    }

    /**
     * Enables or disables every adapter (PEFT's {@code enable_adapters()} / {@code disable_adapters()}):
     * disabled, every layer computes {@code Y = X·Wᵀ + b} exactly and its backward gives A and B no
     * gradient.
     *
     * @param on true to enable every adapter, false to disable them
     * @throws IllegalStateException if a layer is merged (disabling) or the model is closed
     */
    public void setAdaptersEnabled(boolean on) {
        if (!on) {
            requireNoneMerged();
        }
        requireLayersOpen("no adapter was switched");
        layers.values().forEach(l -> l.setAdapterEnabled(on));
    }

    /**
     * Runs {@code step} on every layer in order; if one fails (after the checks passed: an allocation or a
     * backend error), {@code undo} runs on the layers already done, last first, and the failure is rethrown.
     */
    private void everyLayerOrNone(Consumer<LoraLinear> step, Consumer<LoraLinear> undo) {
        List<LoraLinear> done = new ArrayList<>();
        String module = null;
        try {
            for (Map.Entry<String, LoraLinear> e : layers.entrySet()) {
                module = e.getKey();
                step.accept(e.getValue());
                done.add(e.getValue());
            }
        } catch (RuntimeException | Error e) {
            for (int i = done.size() - 1; i >= 0; i--) {
                undo.accept(done.get(i));
            }
            if (e instanceof IllegalArgumentException) {
                throw new IllegalArgumentException("module " + module + ": " + e.getMessage() + "; the " + done.size()
                        + " layers before it were reverted", e);
            }
            throw e;
        }
    }

    /**
     * Refuses a model-wide switch, before it changes any layer, when a layer was closed on its own (through
     * {@link #layer}): its setter would throw part-way, after the layers before it had switched.
     */
    private void requireLayersOpen(String nothingChanged) {
        for (Map.Entry<String, LoraLinear> e : layers().entrySet()) {
            if (e.getValue().isClosed()) {
                throw new IllegalStateException("module " + e.getKey() + ": its layer was closed (through layer(\"" + e.getKey()
                        + "\")); " + nothingChanged);
            }
        }
    }

    /** Refuses disabling, naming the first merged module, before any layer is disabled (none is left half done). */
    private void requireNoneMerged() {
        for (Map.Entry<String, LoraLinear> e : layers().entrySet()) {
            if (e.getValue().isMerged()) {
                throw new IllegalStateException("module " + e.getKey() + ": the adapter is merged into W: unmerge() before "
                        + "disabling the adapters");
            }
        }
    }

    /**
     * Disables every adapter until the returned scope is closed, which restores each layer's previous
     * state (PEFT's {@code with model.disable_adapter():}):
     * <pre>{@code try (var off = model.disableAdapters()) { ... reference forward ... }}</pre>
     *
     * @return a scope whose close() restores every layer's previous state
     * @throws IllegalStateException if a layer is merged (then no layer is disabled) or the model is closed
     */
    public LoraLinear.AdapterScope disableAdapters() {
        requireLayersOpen("no adapter was disabled");  // else the layers before it stayed disabled with no scope to undo it
        requireNoneMerged();
        List<LoraLinear.AdapterScope> scopes = new ArrayList<>();
        try {
            for (LoraLinear l : layers().values()) {
                scopes.add(l.disableAdapter());
            }
        } catch (RuntimeException | Error e) {
            for (int i = scopes.size() - 1; i >= 0; i--) {
                scopes.get(i).close();
            }
            throw e;
        }
        return () -> {
            for (int i = scopes.size() - 1; i >= 0; i--) {
                scopes.get(i).close();
            }
        };
    }

    // ------------------------------------------------------------------ heap-array compute

    /**
     * Forward of module {@code path} on heap rows: {@code x} float[N][d_in] → Y float[N][d_out]
     * ({@code Y = X·Wᵀ + b + γ·B(A·D(X))}, or the base path when adapters are disabled). X is copied into
     * a buffer the model keeps for {@link #backward(String, float[][])}.
     *
     * @param path the adapted module's path
     * @param x    the input rows float[N][d_in], N ≥ 1 (copied)
     * @return Y as a new float[N][d_out]
     * @throws IllegalArgumentException if the path is not adapted, x has the wrong shape (naming the module), or
     *                                  the backend refuses the batch (the cpu backend's limits); a refused x, or a
     *                                  new N the backend refuses, leaves the model as before the call; a refused
     *                                  forward of the module's current N drops its last forward (its X was
     *                                  overwritten), so backward(float[][]) asks for a new forward
     * @throws IllegalStateException if another thread is in this model's forward or backward (nothing is touched then),
     *                               the model is closed, or the module's dropout step cannot advance past
     *                               Long.MAX_VALUE ({@link LoraLinear#forward})
     */
    public float[][] forward(String path, float[][] x) {
        enter();
        try {
            return heapForward(path, x);
        } finally {
            exit();
        }
    }

    private float[][] heapForward(String path, float[][] x) {
        LoraLinear l = layer(path);
        if (x == null) {
            throw new IllegalArgumentException("module " + path + ": x is null (expected float[N][" + l.dIn() + "])");
        }
        int n = x.length;
        HeapBuffers old = heap.get(path);
        HeapBuffers io = buffers(path, l, n);
        try {
            io.x.copyFrom(x);
        } catch (IllegalArgumentException e) {
            if (io != old) {
                // a new N: drop the new buffers, keep the old ones (the layer's last forward still reads them)
                io.arena.close();
            }
            throw new IllegalArgumentException("module " + path + ": x " + e.getMessage() + " (expected float[N][" + l.dIn() + "])", e);
        }
        try {
            l.forward(io.x, io.y);
        } catch (RuntimeException | Error e) {
            // refused by the backend (e.g. a batch past the cpu backend's limits)
            if (io != old) {
                // a new N: the layer's last forward still reads the old buffers, which are kept
                io.arena.close();
            } else {
                // the same N: x was copied over the X the layer's last forward reads, so that forward is gone
                // too (its backward would mix this x with the old U); backward(float[][]) now asks for a forward
                heap.remove(path);
                io.arena.close();
            }
            throw e;
        }
        if (io != old) {
            heap.put(path, io);
            if (old != null) {
                old.arena.close();
            }
        }
        return io.y.toMatrix();
    }

    /**
     * Backward of the last {@link #forward(String, float[][])} of module {@code path}: {@code dy}
     * float[N][d_out] → dX float[N][d_in]; dA and dB go to the layer's gradients (its grad mode).
     *
     * @param path the module of the last heap-array forward
     * @param dy   the upstream gradient float[N][d_out], N as in that forward (copied)
     * @return dX as a new float[N][d_in]
     * @throws IllegalStateException if no heap-array forward of N rows ran on this module, or another forward
     *                               of its layer ({@link #layer(String)}) or a merge()/unmerge() of it ran after it,
     *                               or another thread is in this model's forward or backward
     * @throws IllegalArgumentException if dy is null or has the wrong shape
     */
    public float[][] backward(String path, float[][] dy) {
        enter();
        try {
            return heapBackward(path, dy);
        } finally {
            exit();
        }
    }

    private float[][] heapBackward(String path, float[][] dy) {
        LoraLinear l = layer(path);
        if (dy == null) {
            throw new IllegalArgumentException("module " + path + ": dy is null (expected float[N][" + l.dOut() + "])");
        }
        HeapBuffers io = heap.get(path);
        if (io == null || io.x.dim(0) != dy.length) {
            throw new IllegalStateException("module " + path + ": backward(float[][]) needs a forward(float[][]) of the same "
                    + dy.length + " rows first");
        }
        if (l.isMerged()) {
            throw new IllegalStateException("module " + path + ": the adapter is merged into W: unmerge() and run forward(\""
                    + path + "\", x) again before backward(float[][])");
        }
        if (!l.lastForwardRead(io.x)) {
            // the layer would differentiate that other forward, silently (or merge()/unmerge() dropped it)
            throw new IllegalStateException("module " + path + ": another forward of this layer (through layer(\"" + path
                    + "\")), or a merge()/unmerge() of it, ran after forward(float[][]); run forward(\"" + path
                    + "\", x) again before backward(float[][])");
        }
        try {
            io.dy.copyFrom(dy);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("module " + path + ": dy " + e.getMessage() + " (expected float[" + io.x.dim(0) + "]["
                    + l.dOut() + "])", e);
        }
        l.backward(io.dy, io.dx);
        return io.dx.toMatrix();
    }

    /** X, Y, dY, dX buffers of one module for N rows, reallocated when N changes. */
    private record HeapBuffers(Arena arena, Tensor x, Tensor y, Tensor dy, Tensor dx) {
    }

    /** The module's buffers if they hold N rows, else new ones (not yet registered: the caller swaps them in). */
    private HeapBuffers buffers(String path, LoraLinear l, int n) {
        if (n < 1) {
            throw new IllegalArgumentException("module " + path + ": x must have at least one row");
        }
        HeapBuffers io = heap.get(path);
        if (io != null && io.x.dim(0) == n) {
            return io;
        }
        Arena a = Arena.ofShared();
        try {
            return new HeapBuffers(a, Tensor.allocate(a, DType.F32, n, l.dIn()), Tensor.allocate(a, DType.F32, n, l.dOut()),
                    Tensor.allocate(a, DType.F32, n, l.dOut()), Tensor.allocate(a, DType.F32, n, l.dIn()));
        } catch (RuntimeException | OutOfMemoryError e) {
            a.close();
            throw e;
        }
    }

    // ------------------------------------------------------------------ save

    /**
     * The adapter as an {@link AdapterSet} (views of the live A and B), validated as {@link #save} validates it.
     *
     * @return the adapter set (it changes as training updates A and B)
     * @throws IllegalStateException if the model is closed, or a layer was closed on its own (naming its module)
     */
    public AdapterSet adapters() {
        requireLayersOpen("no adapter set was made");
        return AdapterSet.of(config, layers());
    }

    /**
     * {@link #save(Path, DType)} in the dtype the layers hold A and B in (as PEFT saves the adapter's own
     * tensors): F32 for a new adapter, BF16 or F16 for one loaded in that dtype, F32 when the layers differ.
     * Lossless, and {@link #load} reads the same dtype back, so a run resumes bit for bit; saving a BF16
     * adapter as F32 made the resumed run train in F32, silently.
     *
     * @param dir the folder to write (created if absent)
     * @throws IOException if the folder or files cannot be written
     */
    public void save(Path dir) throws IOException {
        save(dir, adapterDType());
    }

    /** The dtype every layer's A and B have, or F32 when they differ (or there are none). */
    private DType adapterDType() {
        java.util.Set<DType> seen = new java.util.HashSet<>();
        for (LoraLinear l : layers().values()) {
            if (!l.isClosed()) {
                seen.add(l.loraA().dtype());
                seen.add(l.loraB().dtype());
            }
        }
        return seen.size() == 1 ? seen.iterator().next() : DType.F32;
    }

    /**
     * Saves exactly what this model holds as a PEFT folder ({@code adapter_config.json},
     * {@code adapter_model.safetensors}): its config and every module's A and B in {@code dtype}.
     * Checked before anything is written ({@link AdapterSet#save}); {@link #load} reads it back.
     *
     * @param dir   the folder to write (created if absent)
     * @param dtype the dtype of the saved A and B (F32, BF16 or F16; narrowing rounds to nearest even)
     * @throws IOException if the folder or files cannot be written
     * @throws IllegalArgumentException if dir or dtype is null, or the adapter would not load back (nothing is written)
     * @throws IllegalStateException if the model is closed, or a layer was closed on its own (naming its module;
     *                               nothing is written)
     */
    public void save(Path dir, DType dtype) throws IOException {
        if (dir == null) {
            throw new IllegalArgumentException("adapter folder is null");
        }
        if (dtype == null) {
            throw new IllegalArgumentException("dtype is null: save A and B as F32 (PEFT's default), BF16 or F16");
        }
        requireLayersOpen("nothing was saved");
        adapters().save(dir, dtype);
    }

    /**
     * The adapter of module {@code path} as {@link AdapterSet} holds it (views of the live tensors).
     *
     * @param path an adapted module's path
     * @return its module config, A and B
     * @throws IllegalArgumentException if the path is not adapted
     * @throws IllegalStateException if the model is closed, or this module's layer was closed on its own
     */
    public AdapterModule module(String path) {
        LoraLinear l = layer(path);
        if (l.isClosed()) {
            throw new IllegalStateException("module " + path + ": its layer was closed (through layer(\"" + path + "\"))");
        }
        return new AdapterModule(path, l.config(), l.loraA(), l.loraB());
    }

    /**
     * Claims the heap-array buffers for this thread, before anything is copied into them: a second thread's forward
     * would overwrite the X the first one's layer reads, and free those buffers when its layer refuses it.
     */
    private void enter() {
        Thread me = Thread.currentThread();
        if (!user.compareAndSet(null, me)) {
            Thread other = user.get();
            throw new IllegalStateException("LoraModel used by two threads at once (" + (other == null ? "another thread" : other.getName())
                    + " and " + me.getName() + "): one thread at a time");
        }
    }

    private void exit() {
        user.set(null);
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("LoraModel is closed");
        }
    }

    /**
     * Closes every layer, the heap-array buffers and the weights copied from heap arrays.
     *
     * @throws IllegalStateException if another thread is inside this model's heap-array forward or backward, merge
     *                               or unmerge (one thread at a time): nothing is closed; or inside a call of one of
     *                               its layers ({@link LoraLinear#close()} refuses): every other layer is closed, and
     *                               that layer, the heap-array buffers and the copied weights (which its call may be
     *                               reading) stay open, the model too, so that closing it again once the call has
     *                               returned frees the rest
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        enter();
        try {
            IllegalStateException busy = null;
            for (LoraLinear layer : layers.values()) {
                try {
                    layer.close();  // a second close of a layer closed by an earlier attempt does nothing
                } catch (IllegalStateException e) {
                    if (busy == null) {
                        busy = e;
                    } else {
                        busy.addSuppressed(e);
                    }
                }
            }
            if (busy != null) {
                throw busy;
            }
            closed = true;
            heap.values().forEach(h -> h.arena.close());
            if (owned != null) {
                owned.close();
            }
        } finally {
            exit();
        }
    }
}
