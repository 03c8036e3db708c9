/**
 * Reading and writing safetensors files, the format of base checkpoints and PEFT adapters.
 *
 * <p>A file is an 8-byte little-endian unsigned header length N (at most 100,000,000), then N bytes
 * of UTF-8 JSON that start with '{' and hold one object (only spaces may follow it), then the data
 * buffer. Each key of the object names a tensor, mapped to
 * {@code {"dtype":"F32","shape":[r,in],"data_offsets":[begin,end]}} with non-negative integer
 * dims and offsets relative to the data buffer; the optional key {@code __metadata__} maps to an
 * object of strings. Keys are unique, the dtype is one of {@link dev.rslora.io.SafetensorsDtype},
 * end − begin = numel × element size (rank-0 scalars have numel 1, a zero dimension gives an empty
 * range), and the ranges sorted by begin tile the buffer from 0 with no hole or overlap up to the
 * end of the file (8 + N + last end = file size). Data is row-major and little-endian, with no
 * alignment promise. {@link dev.rslora.io.SafetensorsFile} maps a file and checks every rule,
 * failing with a {@link dev.rslora.io.SafetensorsException} that names the broken rule;
 * {@link dev.rslora.io.SafetensorsWriter} streams tensors to a temporary file laid out as the
 * reference writer does (dtype alignment largest first, then name; header padded with spaces to a
 * multiple of 8) and renames it over the target only when complete.
 */
package dev.rslora.io;
