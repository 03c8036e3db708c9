/**
 * Optimizer value types shared by the training layer ({@code dev.rslora.train}) and the fused
 * CUDA AdamW ({@code dev.rslora.backend.cuda}): {@link dev.rslora.optim.AdamWConfig} and
 * {@link dev.rslora.optim.AdamWState}. Depends on nothing else in rslora.
 */
package dev.rslora.optim;
