/**
 * The model-level adapter API (PEFT's {@code get_peft_model}): {@link dev.rslora.model.LoraModel}
 * wraps a set of named frozen weights with a {@link dev.rslora.peft.PeftConfig}, builds one
 * {@link dev.rslora.core.LoraLinear} per targeted module (r, α, γ and dropout per module by PEFT's
 * rules), switches the adapters on and off, saves and loads PEFT folders, and offers
 * {@code float[][]} entry points for callers without off-heap code. It sits above {@code train}
 * (its parameters are {@link dev.rslora.train.Parameter}s for the optimizers).
 */
package dev.rslora.model;
