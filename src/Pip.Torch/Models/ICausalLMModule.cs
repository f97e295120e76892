using Pip.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pip.Torch.Models;

/// <summary>
/// A decoder-only causal language model that Pip can evaluate, score layer by layer and prune:
/// <see cref="LlamaForCausalLM"/> (Llama, Mistral, Qwen2) or <see cref="OptForCausalLM"/>.
/// </summary>
/// <remarks>
/// <para>Besides the whole forward pass (<see cref="call"/>), the pieces can be run one by one, which is what
/// layer-wise metrics do: <c>h = Embed(ids)</c>; for each layer <c>h = ForwardLayer(l, h, context)</c> with a
/// <see cref="CreateLayerContext"/> of the sequence length; then <c>LmHead(FinalNorm(h))</c> gives the logits.
/// The layer-wise path is causal with positions 0 … length-1 and no padding mask, so right-padded batches are exact
/// at every real position.</para>
/// <para>Parameter names are the Hugging Face keys of the architecture.</para>
/// </remarks>
public interface ICausalLMModule : IDisposable
{
    /// <summary>The configuration; its layer count and shapes follow pruning.</summary>
    IModelConfig Config { get; }

    /// <summary>The parameter type.</summary>
    ScalarType Dtype { get; }

    /// <summary>The parameter device.</summary>
    Device Device { get; }

    /// <summary>The decoder layers in order (their <c>parameters()</c> are the layer's weights).</summary>
    IReadOnlyList<nn.Module> Layers { get; }

    /// <summary>Embeds token ids [batch, seq] (int64) at positions 0 … seq-1 into the input of the first layer [batch, seq, hidden].</summary>
    /// <param name="inputIds">Token ids on the model's device.</param>
    /// <returns>The hidden states.</returns>
    Tensor Embed(Tensor inputIds);

    /// <summary>What every layer needs for a sequence of a given length besides its hidden states (rotary tables, causal mask).</summary>
    /// <param name="length">The sequence length.</param>
    /// <param name="batch">The batch size.</param>
    /// <returns>The context; dispose it.</returns>
    DecoderLayerContext CreateLayerContext(long length, long batch = 1);

    /// <summary>Runs one decoder layer (causal, positions 0 … length-1, no cache).</summary>
    /// <param name="layer">The layer index.</param>
    /// <param name="hidden">The layer input [batch, seq, hidden].</param>
    /// <param name="context">A context made by <see cref="CreateLayerContext"/> for this batch and length.</param>
    /// <returns>The layer output.</returns>
    Tensor ForwardLayer(int layer, Tensor hidden, DecoderLayerContext context);

    /// <summary>What follows the last layer before the output projection (the final norm; for OPT also <c>project_out</c>).</summary>
    /// <param name="hidden">The output of the last layer.</param>
    /// <returns>The input of <see cref="LmHead"/>.</returns>
    Tensor FinalNorm(Tensor hidden);

    /// <summary>Projects the output of <see cref="FinalNorm"/> to logits [..., vocab] (tied: with the token embedding).</summary>
    /// <param name="hidden">The output of <see cref="FinalNorm"/>.</param>
    /// <returns>Logits in the model's type.</returns>
    Tensor LmHead(Tensor hidden);

    /// <summary>Runs the decoder stack: embeddings, layers and <see cref="FinalNorm"/> (no output projection).</summary>
    /// <param name="input">The input.</param>
    /// <returns>The last hidden state (input of <see cref="LmHead"/>) and, when requested, every layer's input.</returns>
    DecoderOutput Decode(CausalLMInput input);

    /// <summary>Runs the whole model.</summary>
    /// <param name="input">The input.</param>
    /// <returns>The logits (and hidden states when requested).</returns>
    CausalLMOutput call(CausalLMInput input);

    /// <summary>Runs the model on token ids and returns the logits [batch, seq, vocab].</summary>
    /// <param name="inputIds">int64 token ids [batch, seq] on the model's device.</param>
    /// <returns>The logits.</returns>
    Tensor Logits(Tensor inputIds);

    /// <summary>The parameters under their Hugging Face names (live tensors: do not dispose).</summary>
    /// <returns>Name → parameter.</returns>
    IReadOnlyDictionary<string, Tensor> NamedWeights();

    /// <summary>Copies weights keyed by Hugging Face names into the parameters, strictly (see the implementations).</summary>
    /// <param name="weights">Name → tensor.</param>
    void LoadWeights(IReadOnlyDictionary<string, Tensor> weights);

    /// <summary>
    /// Matches a checkpoint's tensor names and shapes against the parameters, strictly (as <see cref="LoadWeights"/>),
    /// without reading weights; returns checkpoint tensor name → the live parameter to fill in place.
    /// </summary>
    /// <param name="checkpointShapes">Checkpoint tensor name → shape.</param>
    /// <returns>Checkpoint tensor name → parameter (do not dispose).</returns>
    IReadOnlyDictionary<string, Tensor> WeightTargets(IReadOnlyDictionary<string, long[]> checkpointShapes);

    /// <summary>Counts parameters: total, embeddings, untied head, final norm, each layer.</summary>
    /// <returns>The counts.</returns>
    ParameterCounts CountParameters();

    /// <summary>The parameters of the module (<c>nn.Module.parameters</c>).</summary>
    /// <param name="recurse">Whether to include sub-modules.</param>
    /// <returns>The parameters.</returns>
    IEnumerable<Parameter> parameters(bool recurse = true);

    /// <summary>Removes whole decoder layers and renumbers the others; <see cref="Config"/> follows.</summary>
    /// <param name="indices">Current indices of the layers to remove; duplicates ignored.</param>
    /// <returns>The new configuration.</returns>
    IModelConfig RemoveLayers(IReadOnlyCollection<int> indices);
}

/// <summary>
/// Per-sequence inputs that every decoder layer shares in a layer-wise pass (see
/// <see cref="ICausalLMModule.CreateLayerContext"/>): rotary tables for Llama-layout models, a causal mask for OPT.
/// Owns its tensors.
/// </summary>
public sealed class DecoderLayerContext : IDisposable
{
    internal DecoderLayerContext(long length, long batch, RotaryCache? rotary, Tensor? attentionMask)
    {
        Length = length;
        Batch = batch;
        Rotary = rotary;
        AttentionMask = attentionMask;
    }

    /// <summary>The sequence length.</summary>
    public long Length { get; }

    /// <summary>The batch size.</summary>
    public long Batch { get; }

    /// <summary>Rotary tables (Llama layout), or null.</summary>
    internal RotaryCache? Rotary { get; }

    /// <summary>An additive attention mask [1, 1, length, length] (OPT), or null.</summary>
    internal Tensor? AttentionMask { get; }

    /// <inheritdoc/>
    public void Dispose()
    {
        Rotary?.Dispose();
        AttentionMask?.Dispose();
    }
}
