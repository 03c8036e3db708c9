package dev.rslora.peft;

import com.fasterxml.jackson.databind.JsonNode;
import dev.rslora.io.SafetensorsEntry;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A base model checkpoint in safetensors form, memory-mapped (never copied into the heap):
 * <ul>
 *   <li>one {@code .safetensors} file, or</li>
 *   <li>a folder with {@code model.safetensors.index.json} ({@code weight_map}: tensor name →
 *       shard file in that folder) and the shards it names, or</li>
 *   <li>a folder with a single {@code model.safetensors} and no index.</li>
 * </ul>
 * Every shard is validated by {@link SafetensorsFile}; the index must name each tensor of each
 * shard exactly once, and only shards that exist. Tensors are zero-copy views owned by the arena
 * given to {@link #open}.
 */
public final class BaseCheckpoint {
    /** The index file name of a sharded checkpoint (transformers' SAFE_WEIGHTS_INDEX_NAME). */
    public static final String INDEX = "model.safetensors.index.json";
    /** The single-file name inside a folder (transformers' SAFE_WEIGHTS_NAME). */
    public static final String SINGLE = "model.safetensors";

    /**
     * One file of the checkpoint.
     *
     * @param fileName its name relative to the folder (the file name for a single file)
     * @param file     its validated, mapped contents
     */
    public record Shard(String fileName, SafetensorsFile file) {
    }

    private final Path path;
    private final boolean folder;
    private final List<Shard> shards;
    private final Map<String, Shard> byTensor;

    private BaseCheckpoint(Path path, boolean folder, List<Shard> shards, Map<String, Shard> byTensor) {
        this.path = path;
        this.folder = folder;
        this.shards = shards;
        this.byTensor = byTensor;
    }

    /**
     * Opens a file or a shard folder (see the class comment), mapping every shard into {@code arena}.
     *
     * @param path  a .safetensors file, or a folder with model.safetensors or an index and its shards
     * @param arena owns the mappings: the checkpoint's tensors are valid until it closes
     * @return the checkpoint
     * @throws java.nio.file.NoSuchFileException when the path does not exist
     * @throws dev.rslora.io.SafetensorsException when a shard breaks the safetensors format
     * @throws PeftFormatException                 when the folder or its index is inconsistent
     * @throws IllegalArgumentException            if path or arena is null
     */
    public static BaseCheckpoint open(Path path, Arena arena) throws IOException {
        if (path == null || arena == null) {
            throw new IllegalArgumentException("BaseCheckpoint.open: " + (path == null ? "path" : "arena") + " is null");
        }
        if (Files.exists(path) && !Files.isDirectory(path)) {   // SafetensorsFile refuses a device or pipe, naming it
            SafetensorsFile f = SafetensorsFile.open(path, arena);
            Shard s = new Shard(path.getFileName().toString(), f);
            return new BaseCheckpoint(path, false, List.of(s), index(List.of(s)));
        }
        if (!Files.isDirectory(path)) {
            throw new java.nio.file.NoSuchFileException(path.toString());
        }
        Path index = path.resolve(INDEX);
        if (!Files.isRegularFile(index)) {
            Path single = path.resolve(SINGLE);
            if (!Files.isRegularFile(single)) {
                throw new PeftFormatException(path + ": a checkpoint folder needs " + INDEX + " (sharded) or " + SINGLE);
            }
            Shard s = new Shard(SINGLE, SafetensorsFile.open(single, arena));
            return new BaseCheckpoint(path, true, List.of(s), index(List.of(s)));
        }
        Map<String, String> weightMap = readWeightMap(index);
        TreeMap<String, Shard> files = new TreeMap<>();
        for (String file : weightMap.values()) {
            if (!files.containsKey(file)) {
                if (file.contains("/") || file.contains("\\") || file.equals("..") || file.equals(".") || file.isEmpty()) {
                    throw new PeftFormatException(index + ": shard name " + PeftConfigReader.quote(file)
                            + " must be a plain file name in the checkpoint folder");
                }
                Path shardPath = path.resolve(file);
                if (!Files.isRegularFile(shardPath)) {
                    throw new PeftFormatException(index + ": weight_map names shard " + PeftConfigReader.quote(file)
                            + ", which is not in " + path);
                }
                files.put(file, new Shard(file, SafetensorsFile.open(shardPath, arena)));
            }
        }
        List<Shard> shards = List.copyOf(files.values());
        Map<String, Shard> byTensor = index(shards);
        for (Map.Entry<String, String> e : weightMap.entrySet()) {
            Shard actual = byTensor.get(e.getKey());
            if (actual == null || !actual.fileName().equals(e.getValue())) {
                throw new PeftFormatException(index + ": weight_map puts tensor " + PeftConfigReader.quote(e.getKey()) + " in "
                        + e.getValue() + (actual == null ? ", which has no such tensor" : " but it is in " + actual.fileName()));
            }
        }
        for (String name : byTensor.keySet()) {
            if (!weightMap.containsKey(name)) {
                throw new PeftFormatException(index + ": tensor " + PeftConfigReader.quote(name) + " of shard "
                        + byTensor.get(name).fileName() + " is missing from weight_map");
            }
        }
        return new BaseCheckpoint(path, true, shards, byTensor);
    }

    private static Map<String, Shard> index(List<Shard> shards) throws PeftFormatException {
        Map<String, Shard> m = new LinkedHashMap<>();
        for (Shard s : shards) {
            for (SafetensorsEntry e : s.file().entries()) {
                Shard before = m.putIfAbsent(e.name(), s);
                if (before != null) {
                    throw new PeftFormatException("tensor " + PeftConfigReader.quote(e.name()) + " is in two shards: "
                            + before.fileName() + " and " + s.fileName());
                }
            }
        }
        return Collections.unmodifiableMap(m);
    }

    private static Map<String, String> readWeightMap(Path index) throws IOException {
        JsonNode root = PeftConfigReader.readTree(PeftConfigReader.readText(index), index.toString());
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject()) {
            throw new PeftFormatException(index + ": \"weight_map\" must be an object of tensor name -> shard file");
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) {
                throw new PeftFormatException(index + ": weight_map value of " + PeftConfigReader.quote(e.getKey())
                        + " must be a file name, got " + e.getValue());
            }
            out.put(e.getKey(), e.getValue().asText());
        }
        return out;
    }

    /**
     * The path given to {@link #open}.
     *
     * @return the file or folder
     */
    public Path path() {
        return path;
    }

    /**
     * Whether the checkpoint was opened from a folder.
     *
     * @return true for a folder (sharded or a single model.safetensors), false for one file
     */
    public boolean isFolder() {
        return folder;
    }

    /**
     * Whether the checkpoint is sharded.
     *
     * @return true when the folder has model.safetensors.index.json
     */
    public boolean isSharded() {
        return folder && Files.isRegularFile(path.resolve(INDEX));
    }

    /**
     * The files, ordered by name.
     *
     * @return the shards (one for a single file)
     */
    public List<Shard> shards() {
        return shards;
    }

    /**
     * Every tensor name, shard by shard in header order.
     *
     * @return a new list of the names
     */
    public List<String> names() {
        return new ArrayList<>(byTensor.keySet());
    }

    /**
     * Whether the checkpoint holds a tensor called {@code name}.
     *
     * @param name a tensor name (exact)
     * @return true when some shard holds it
     */
    public boolean contains(String name) {
        return byTensor.containsKey(name);
    }

    /**
     * The shard holding tensor {@code name}.
     *
     * @param name a tensor name (exact)
     * @return its shard
     * @throws IllegalArgumentException naming the checkpoint when the tensor is absent
     */
    public Shard shardOf(String name) {
        Shard s = byTensor.get(name);
        if (s == null) {
            throw new IllegalArgumentException("no tensor " + PeftConfigReader.quote(name) + " in " + path);
        }
        return s;
    }

    /**
     * The header entry of tensor {@code name}.
     *
     * @param name a tensor name (exact)
     * @return its dtype, shape and byte range
     * @throws IllegalArgumentException when the tensor is absent
     */
    public SafetensorsEntry entry(String name) {
        return shardOf(name).file().entry(name);
    }

    /**
     * Tensor {@code name} (F32/BF16/F16) as a zero-copy view of its mapped shard.
     *
     * @param name a tensor name (exact)
     * @return a read-only tensor over the mapping
     * @throws IllegalArgumentException when the tensor is absent or not F32/BF16/F16
     */
    public Tensor tensor(String name) {
        return shardOf(name).file().tensor(name);
    }

    /**
     * Total bytes of tensor data over all shards.
     *
     * @return Σ of every tensor's byte length (headers excluded)
     */
    public long dataBytes() {
        long n = 0;
        for (Shard s : shards) {
            for (SafetensorsEntry e : s.file().entries()) {
                n += e.byteLength();
            }
        }
        return n;
    }

    /**
     * Module paths with a 2-D floating-point weight ({@code P.weight} with a rank-2 F32/BF16/F16
     * tensor), in tensor order: the modules an adapter can target.
     *
     * @return the module paths (without ".weight")
     */

    public List<String> linearModules() {
        List<String> out = new ArrayList<>();
        for (Map.Entry<String, Shard> e : byTensor.entrySet()) {
            String name = e.getKey();
            if (name.endsWith(".weight")) {
                SafetensorsEntry en = e.getValue().file().entry(name);
                if (en.rank() == 2 && en.dtype().isComputable()) {
                    out.add(name.substring(0, name.length() - ".weight".length()));
                }
            }
        }
        return out;
    }

    @Override
    public String toString() {
        return "BaseCheckpoint[" + path + ", " + shards.size() + " file(s), " + byTensor.size() + " tensors]";
    }
}
