package dev.rslora.backend.cuda;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The byte layout of one C struct of {@code cuda/rslora_params.h}, computed with the C rules for
 * x86-64/CUDA (each field aligned to its size, the struct padded to its largest alignment), and a
 * packer that fills one instance little-endian. A kernel's params struct is passed by value: the
 * launch hands the driver a pointer to these bytes. The offsets are checked against the file's
 * {@code static_assert}s by a unit test, so the two sides cannot drift apart silently.
 */
final class CStruct {
    enum Kind {
        PTR(8), I64(8), F64(8), I32(4), U32(4), F32(4);

        final int size;

        Kind(int size) {
            this.size = size;
        }
    }

    record Field(String name, Kind kind, int offset) {
    }

    private final String name;
    private final Map<String, Field> fields;
    private final int size;
    private final int align;
    private final Map<String, Integer> nestedOffsets;

    private CStruct(String name, Map<String, Field> fields, Map<String, Integer> nestedOffsets, int size, int align) {
        this.name = name;
        this.fields = fields;
        this.nestedOffsets = nestedOffsets;
        this.size = size;
        this.align = align;
    }

    static Builder builder(String name) {
        return new Builder(name);
    }

    String name() {
        return name;
    }

    int size() {
        return size;
    }

    int align() {
        return align;
    }

    /** Byte offset of a field; nested struct fields are named "outer.inner". */
    int offset(String field) {
        Field f = fields.get(field);
        if (f == null) {
            throw new IllegalArgumentException(name + " has no field '" + field + "' (fields: " + fields.keySet() + ")");
        }
        return f.offset();
    }

    /** All leaf fields in declaration order. */
    List<Field> fields() {
        return Collections.unmodifiableList(new ArrayList<>(fields.values()));
    }

    Packer packer() {
        return new Packer(this);
    }

    static final class Builder {
        private final String name;
        private final Map<String, Field> fields = new LinkedHashMap<>();
        private final Map<String, Integer> nested = new LinkedHashMap<>();
        private int offset;
        private int align = 1;

        private Builder(String name) {
            this.name = name;
        }

        private Builder add(String field, Kind kind) {
            offset = alignUp(offset, kind.size);
            if (fields.put(field, new Field(field, kind, offset)) != null) {
                throw new IllegalArgumentException("duplicate field " + field + " in " + name);
            }
            offset += kind.size;
            align = Math.max(align, kind.size);
            return this;
        }

        Builder ptr(String f) {
            return add(f, Kind.PTR);
        }

        Builder i64(String f) {
            return add(f, Kind.I64);
        }

        Builder i32(String f) {
            return add(f, Kind.I32);
        }

        Builder u32(String f) {
            return add(f, Kind.U32);
        }

        Builder f32(String f) {
            return add(f, Kind.F32);
        }

        Builder f64(String f) {
            return add(f, Kind.F64);
        }

        /** Embeds {@code inner} by value; its fields become "field.innerField". */
        Builder struct(String field, CStruct inner) {
            offset = alignUp(offset, inner.align);
            nested.put(field, offset);
            for (Field f : inner.fields.values()) {
                fields.put(field + "." + f.name(), new Field(field + "." + f.name(), f.kind(), offset + f.offset()));
            }
            offset += inner.size;
            align = Math.max(align, inner.align);
            return this;
        }

        CStruct build() {
            return new CStruct(name, new LinkedHashMap<>(fields), new LinkedHashMap<>(nested), alignUp(offset, align), align);
        }
    }

    /** Offset of a nested struct field (e.g. "drop"), or of a leaf field. */
    int memberOffset(String field) {
        Integer o = nestedOffsets.get(field);
        return o != null ? o : offset(field);
    }

    static int alignUp(int v, int a) {
        return (v + a - 1) / a * a;
    }

    /** Fills one instance; {@link #bytes()} refuses to hand out a struct with an unset field. */
    static final class Packer {
        private final CStruct layout;
        private final ByteBuffer buf;
        private final BitSet written = new BitSet();
        private final List<Field> order;

        private Packer(CStruct layout) {
            this.layout = layout;
            this.buf = ByteBuffer.allocate(layout.size).order(ByteOrder.LITTLE_ENDIAN);
            this.order = new ArrayList<>(layout.fields.values());
        }

        private Field field(String name, Kind... kinds) {
            Field f = layout.fields.get(name);
            if (f == null) {
                throw new IllegalArgumentException(layout.name + " has no field '" + name + "'");
            }
            for (Kind k : kinds) {
                if (f.kind() == k) {
                    written.set(order.indexOf(f));
                    return f;
                }
            }
            throw new IllegalArgumentException(layout.name + "." + name + " is " + f.kind() + ", not " + List.of(kinds));
        }

        /** A device address (0 for a null pointer). */
        Packer ptr(String name, long address) {
            buf.putLong(field(name, Kind.PTR).offset(), address);
            return this;
        }

        Packer i64(String name, long v) {
            buf.putLong(field(name, Kind.I64).offset(), v);
            return this;
        }

        /** An int32 or uint32 field (a uint32 takes the low 32 bits as they are). */
        Packer i32(String name, int v) {
            buf.putInt(field(name, Kind.I32, Kind.U32).offset(), v);
            return this;
        }

        Packer f32(String name, float v) {
            buf.putFloat(field(name, Kind.F32).offset(), v);
            return this;
        }

        Packer f64(String name, double v) {
            buf.putDouble(field(name, Kind.F64).offset(), v);
            return this;
        }

        byte[] bytes() {
            if (written.cardinality() != order.size()) {
                List<String> missing = new ArrayList<>();
                for (int i = 0; i < order.size(); i++) {
                    if (!written.get(i)) {
                        missing.add(order.get(i).name());
                    }
                }
                throw new IllegalStateException(layout.name + ": fields not set: " + missing);
            }
            return buf.array().clone();
        }
    }
}
