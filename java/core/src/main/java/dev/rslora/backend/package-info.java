/**
 * The backend contract: {@link dev.rslora.backend.Backend}, {@link dev.rslora.backend.FrozenWeight},
 * {@link dev.rslora.backend.LoraParams}, {@link dev.rslora.backend.GradMode}, shared merge math,
 * and the provider {@link dev.rslora.backend.Backends}, which finds
 * {@link dev.rslora.backend.BackendFactory} implementations through {@link java.util.ServiceLoader}
 * and names none. It sits below both the implementations ({@code backend.reference},
 * {@code backend.cpu}, {@code backend.cuda}) and the layer ({@code dev.rslora.core}); it depends
 * only on {@code tensor} and {@code dropout}. The whole layer order is README's layout table,
 * checked by {@code LayeringTest}.
 */
package dev.rslora.backend;
