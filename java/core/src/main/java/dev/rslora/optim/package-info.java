/**
 * Optimizer value types shared by the training layer ({@code dev.rslora.train}) and the fused
 * CUDA optimizers ({@code dev.rslora.backend.cuda}): {@link dev.rslora.optim.AdamWConfig} and
 * {@link dev.rslora.optim.AdamWState}; {@link dev.rslora.optim.AdafactorConfig},
 * {@link dev.rslora.optim.AdafactorState} and {@link dev.rslora.optim.AdafactorSpec}, the one
 * definition of Adafactor's fp32 arithmetic and reduction order that the CPU and the CUDA
 * implementations both follow. Depends on nothing else in rslora.
 */
package dev.rslora.optim;
