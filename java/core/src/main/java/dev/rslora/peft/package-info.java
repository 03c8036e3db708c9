/**
 * Interoperability with Hugging Face PEFT (SPEC.md §8): LoRA / rsLoRA adapters over whole models.
 *
 * <ul>
 *   <li>{@link dev.rslora.peft.PeftConfig}: {@code adapter_config.json} as PEFT reads it
 *       ({@link dev.rslora.peft.PeftConfigReader}, defaults, unknown keys ignored, unsupported
 *       variants refused by field) and writes it ({@link dev.rslora.peft.PeftConfigWriter}: sorted
 *       keys, 2-space indent); target_modules, exclude_modules, layer filters, and
 *       rank_pattern / alpha_pattern ({@link dev.rslora.peft.PatternMap}) matched as PEFT matches them;
 *       γ recomputed from use_rslora, r and α for every module.</li>
 *   <li>{@link dev.rslora.peft.AdapterSet}: module path → {@link dev.rslora.peft.AdapterModule}
 *       (A [r, d_in], B [d_out, r], per-module r/α/γ) plus extra tensors (modules_to_save, a SEQ_CLS
 *       head) — loaded from or saved to a PEFT folder, initialised over a base checkpoint, or taken
 *       from trained {@link dev.rslora.core.LoraLinear} layers.</li>
 *   <li>{@link dev.rslora.peft.BaseCheckpoint}: one safetensors file or a shard folder with its
 *       index, memory-mapped.</li>
 *   <li>{@link dev.rslora.peft.CheckpointMerge}: merge / unmerge into a whole checkpoint, streaming
 *       one tensor at a time through a small buffer, output renamed into place only when complete.</li>
 * </ul>
 * This package sits above {@code io} and {@code core}: it uses the backend package only for the
 * merge arithmetic ({@link dev.rslora.backend.MergeMath}) and for building layers a caller asks for.
 */
package dev.rslora.peft;
