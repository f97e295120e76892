using System.Text;
using Pip.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pip.Torch.Models;

/// <summary>
/// A Llama-layout causal language model (Llama, Mistral, Qwen2) with Hugging Face parameter names:
/// <c>model.*</c> (<see cref="LlamaModel"/>) and <c>lm_head.weight</c>, which does not exist when
/// <see cref="LlamaConfig.TieWordEmbeddings"/> is set (the logits then use <c>model.embed_tokens.weight</c>).
/// </summary>
/// <remarks>
/// Besides the whole forward pass, the pieces can be run one by one (for layer-wise pruning):
/// <see cref="Embed"/>, <see cref="ComputeRotary(long, long, long)"/>, <see cref="Layers"/> (each
/// <see cref="LlamaDecoderLayer.forward"/>), <see cref="FinalNorm"/> and <see cref="LmHead"/>.
/// Sequences in a batch must have the same length: there is no padding mask.
/// </remarks>
public sealed class LlamaForCausalLM : nn.Module<CausalLMInput, CausalLMOutput>, ICausalLMModule
{
    /// <summary>The name of the untied output projection weight.</summary>
    public const string LmHeadWeightName = "lm_head.weight";

    /// <summary>The name of the token-embedding weight.</summary>
    public const string EmbedTokensWeightName = "model.embed_tokens.weight";

#pragma warning disable IDE1006 // Hugging Face parameter names
    private readonly LlamaModel model;
    private readonly Linear? lm_head;
#pragma warning restore IDE1006

    /// <summary>
    /// Creates a model with zero-filled projections and embeddings and all-ones norms, to be filled by
    /// <see cref="LoadWeights"/>. Use <see cref="CreateRandom"/> for a randomly initialised model.
    /// </summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="dtype">The parameter type: float32, bfloat16 or float16.</param>
    /// <param name="device">The parameter device, or null for the CPU.</param>
    public LlamaForCausalLM(LlamaConfig config, ScalarType dtype = ScalarType.Float32, Device? device = null) : base(nameof(LlamaForCausalLM))
    {
        LlamaModel.ValidateConfig(config);
        ModelParts.CheckDtype(dtype);
        Config = config;
        model = new LlamaModel(config, dtype, device);
        lm_head = config.TieWordEmbeddings ? null : ModelParts.Linear(config.HiddenSize, config.VocabSize, false, dtype, device);
        RegisterComponents();
    }

    /// <summary>
    /// Creates a randomly initialised model the way Hugging Face does: normal(0, 0.02) for linear and embedding weights,
    /// zeros for biases, ones for norms. The draws are made in float32 on the CPU from a generator seeded with
    /// <paramref name="seed"/> (in parameter order), so models of any type and device made with one seed hold the same
    /// values up to rounding. Global torch state (default type, device, global generator) is not touched.
    /// </summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="seed">The random seed.</param>
    /// <param name="dtype">The parameter type.</param>
    /// <param name="device">The parameter device, or null for the CPU.</param>
    /// <param name="std">The standard deviation of the weights.</param>
    /// <returns>The model.</returns>
    public static LlamaForCausalLM CreateRandom(LlamaConfig config, long seed, ScalarType dtype = ScalarType.Float32, Device? device = null, double std = 0.02)
    {
        var result = new LlamaForCausalLM(config, dtype, device);
        try
        {
            using var generator = new Generator(unchecked((ulong)seed), CPU);
            using var noGrad = no_grad();
            var norms = new HashSet<IntPtr>(result.modules().OfType<RmsNorm>().Select(n => n.Weight.Handle));
            foreach (var (name, p) in result.named_parameters())
            {
                using var scope = NewDisposeScope();
                if (norms.Contains(p.Handle)) p.fill_(1.0);
                else if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
                else p.copy_(randn(p.shape, dtype: ScalarType.Float32, device: CPU, generator: generator) * std);
            }
        }
        catch
        {
            result.Dispose();
            throw;
        }
        return result;
    }

    /// <summary>
    /// The configuration; after <see cref="RemoveLayers"/> its <c>NumHiddenLayers</c> follows, and after width pruning
    /// (<see cref="Pruning.Width.WidthPruner"/>) its head counts, MLP width and <see cref="LlamaConfig.LayerShapes"/>.
    /// </summary>
    public LlamaConfig Config { get; private set; }

    /// <summary>The decoder stack, Hugging Face name <c>model</c>.</summary>
    public LlamaModel Model => model;

    /// <summary>The output projection, Hugging Face name <c>lm_head</c>; null when the embeddings are tied.</summary>
    public Linear? LmHeadLinear => lm_head;

    /// <summary>The decoder layers in order.</summary>
    public IReadOnlyList<LlamaDecoderLayer> Layers => model.Layers;

    /// <summary>The rotary embedding.</summary>
    public RotaryEmbedding Rotary => model.Rotary;

    /// <summary>The parameter type (that of the token embedding).</summary>
    public ScalarType Dtype => model.EmbedTokens.Weight.dtype;

    /// <summary>The parameter device (that of the token embedding).</summary>
    public Device Device => model.EmbedTokens.Weight.device;

    /// <summary>Embeds token ids [batch, seq] (int64) into hidden states [batch, seq, hidden].</summary>
    /// <param name="inputIds">Token ids on the model's device.</param>
    /// <returns>The embeddings.</returns>
    public Tensor Embed(Tensor inputIds) => model.Embed(inputIds);

    /// <summary>Rotary tables for positions start … start+length-1, in the model's type and on its device.</summary>
    /// <param name="length">The sequence length.</param>
    /// <param name="batch">The batch size.</param>
    /// <param name="start">The first position.</param>
    /// <returns>Tables [batch, length, head_dim]; dispose them.</returns>
    public RotaryCache ComputeRotary(long length, long batch = 1, long start = 0) =>
        model.Rotary.Compute(start, length, batch, Dtype, Device);

    /// <summary>Applies the final norm (<c>model.norm</c>).</summary>
    /// <param name="hidden">The output of the last layer.</param>
    /// <returns>The normalised hidden states.</returns>
    public Tensor FinalNorm(Tensor hidden) => model.Norm.call(hidden);

    /// <summary>Projects normalised hidden states [..., hidden] to logits [..., vocab] (tied: with the embedding weight).</summary>
    /// <param name="hidden">Normalised hidden states.</param>
    /// <returns>Logits in the model's type.</returns>
    public Tensor LmHead(Tensor hidden) =>
        lm_head is null ? nn.functional.linear(hidden, model.EmbedTokens.Weight) : lm_head.call(hidden);

    /// <inheritdoc/>
    IModelConfig ICausalLMModule.Config => Config;

    /// <inheritdoc/>
    IReadOnlyList<nn.Module> ICausalLMModule.Layers => Layers;

    /// <inheritdoc/>
    public DecoderLayerContext CreateLayerContext(long length, long batch = 1) =>
        new(length, batch, ComputeRotary(length, batch), null);

    /// <inheritdoc/>
    public Tensor ForwardLayer(int layer, Tensor hidden, DecoderLayerContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var rope = context.Rotary ?? throw new ArgumentException("The context was not made by this model (it has no rotary tables).", nameof(context));
        return model.Layers[layer].call(hidden, rope);
    }

    /// <inheritdoc/>
    public DecoderOutput Decode(CausalLMInput input) => model.call(input);

    /// <inheritdoc/>
    IModelConfig ICausalLMModule.RemoveLayers(IReadOnlyCollection<int> indices) => RemoveLayers(indices);

    /// <inheritdoc/>
    public override CausalLMOutput forward(CausalLMInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var decoded = model.call(input);
        using var last = decoded.LastHiddenState;
        var logits = LmHead(last);
        return new CausalLMOutput(logits, decoded.HiddenStates, input.Cache);
    }

    /// <summary>Runs the model on token ids and returns the logits [batch, seq, vocab].</summary>
    /// <param name="inputIds">int64 token ids [batch, seq] on the model's device.</param>
    /// <returns>The logits.</returns>
    public Tensor Logits(Tensor inputIds)
    {
        using var output = call(new CausalLMInput(inputIds));
        return output.Logits.alias();
    }

    /// <summary>
    /// Removes whole decoder layers, disposes them, and renumbers the remaining ones so that the parameter names are
    /// again <c>model.layers.0</c> … <c>model.layers.K-1</c>. <see cref="Config"/> is updated.
    /// </summary>
    /// <param name="indices">Indices (in the current numbering) of the layers to remove; duplicates are ignored.</param>
    /// <returns>The new configuration (<c>NumHiddenLayers</c> reduced).</returns>
    /// <exception cref="ArgumentOutOfRangeException">An index is not a current layer.</exception>
    public LlamaConfig RemoveLayers(IReadOnlyCollection<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        var current = model.Layers;
        var bad = indices.Where(i => i < 0 || i >= current.Count).Distinct().OrderBy(i => i).ToArray();
        if (bad.Length > 0)
            throw new ArgumentOutOfRangeException(nameof(indices), $"Layer indices {string.Join(", ", bad)} are out of range: the model has {current.Count} layers.");
        var remove = new HashSet<int>(indices);
        var keep = current.Where((_, i) => !remove.Contains(i)).ToArray();
        model.ReplaceLayers(keep);
        foreach (var i in remove) current[i].Dispose();
        Config = (Config with { NumHiddenLayers = keep.Length, LayerShapes = null }).WithLayerShapes(keep.Select(l => l.Shape).ToArray());
        return Config;
    }

    /// <summary>
    /// Sets <see cref="Config"/> from the current layer shapes (after width pruning): a standard configuration when
    /// all layers agree, per-layer shapes otherwise (see <see cref="LlamaConfig.WithLayerShapes"/>).
    /// </summary>
    /// <returns>The new configuration.</returns>
    internal LlamaConfig SyncLayerShapes()
    {
        Config = Config.WithLayerShapes(model.Layers.Select(l => l.Shape).ToArray());
        return Config;
    }

    /// <summary>
    /// Gives every layer's attention projections (when <paramref name="attention"/>) and MLP projections (when
    /// <paramref name="mlp"/>) biases, zero where they had none, and sets <c>attention_bias</c> / <c>mlp_bias</c> in
    /// <see cref="Config"/> so that a saved checkpoint loads in transformers (whose flags apply to all projections of
    /// all layers). Llama family only: Mistral and Qwen2 have no such flags.
    /// </summary>
    /// <param name="attention">Whether to give the attention projections biases.</param>
    /// <param name="mlp">Whether to give the MLP projections biases.</param>
    /// <exception cref="NotSupportedException">The model is not of the Llama family.</exception>
    internal void EnableProjectionBiases(bool attention, bool mlp)
    {
        if (!attention && !mlp) return;
        if (Config.Family != DecoderFamily.Llama)
            throw new NotSupportedException($"{Config.Family} checkpoints have no attention_bias/mlp_bias flags for o_proj/down_proj biases.");
        using var noGrad = no_grad();
        foreach (var layer in model.Layers)
        {
            if (attention) layer.SelfAttn.EnsureBiases(null);
            if (mlp) layer.Mlp.EnsureBiases(null);
        }
        Config = Config with { AttentionBias = Config.AttentionBias || attention, MlpBias = Config.MlpBias || mlp };
    }

    /// <summary>
    /// The parameters under their Hugging Face names, in registration order. The tensors are the live parameters:
    /// do not dispose them; write them out, or clone them.
    /// </summary>
    /// <returns>Name → parameter.</returns>
    public IReadOnlyDictionary<string, Tensor> NamedWeights()
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, p) in named_parameters()) result.Add(name, p);
        return result;
    }

    /// <summary>
    /// Copies weights (keyed by Hugging Face names) into the parameters, converting type and device as needed, under
    /// no_grad. Strict, as <see cref="WeightTargets"/> says.
    /// </summary>
    /// <param name="weights">Name → tensor. The tensors are not disposed or kept.</param>
    /// <exception cref="ArgumentException">Names are missing or unexpected, or shapes differ; the message lists them all.</exception>
    public void LoadWeights(IReadOnlyDictionary<string, Tensor> weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var targets = WeightTargets(weights.ToDictionary(p => p.Key, p => p.Value.shape, StringComparer.Ordinal));
        using var noGrad = no_grad();
        foreach (var (name, p) in targets) p.copy_(weights[name]);
    }

    /// <summary>
    /// Matches a checkpoint's tensor names and shapes against the parameters, strictly, without reading any weights:
    /// every parameter must be present with the same shape and no other key may be given, except that
    /// <c>lm_head.weight</c> is ignored when the embeddings are tied (some checkpoints store it anyway) and keys
    /// ending in <c>rotary_emb.inv_freq</c> (old checkpoints) are ignored, as transformers does. Loading in place
    /// (<see cref="Checkpoints.TorchSafeTensors.LoadInto(CheckpointFolder, IReadOnlyDictionary{string, Tensor}, CancellationToken)"/>)
    /// fills the returned parameters straight from the files.
    /// </summary>
    /// <param name="checkpointShapes">Checkpoint tensor name → shape.</param>
    /// <returns>Checkpoint tensor name → the live parameter it fills (do not dispose).</returns>
    /// <exception cref="ArgumentException">Names are missing or unexpected, or shapes differ; the message lists them all.</exception>
    public IReadOnlyDictionary<string, Tensor> WeightTargets(IReadOnlyDictionary<string, long[]> checkpointShapes)
    {
        ArgumentNullException.ThrowIfNull(checkpointShapes);
        var own = NamedWeights();
        var missing = own.Keys.Where(k => !checkpointShapes.ContainsKey(k)).ToList();
        var unexpected = checkpointShapes.Keys.Where(k => !own.ContainsKey(k) && !IsIgnorable(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var mismatched = new List<string>();
        foreach (var (name, p) in own)
        {
            if (checkpointShapes.TryGetValue(name, out var shape) && !shape.SequenceEqual(p.shape))
                mismatched.Add($"{name}: checkpoint {ModelParts.Shape(shape)}, model {ModelParts.Shape(p.shape)}");
        }
        if (missing.Count + unexpected.Count + mismatched.Count > 0)
        {
            var message = new StringBuilder("The weights do not match the model");
            message.Append($" ({Config.Family}, {Config.NumHiddenLayers} layers, hidden {Config.HiddenSize}, tied embeddings: {Config.TieWordEmbeddings}"
                + (Config.IsHeterogeneous ? ", per-layer shapes" : "") + ").");
            AppendList(message, "Missing", missing);
            AppendList(message, "Unexpected", unexpected);
            AppendList(message, "Shape mismatch", mismatched);
            throw new ArgumentException(message.ToString(), nameof(checkpointShapes));
        }
        return own;

        bool IsIgnorable(string key) =>
            (Config.TieWordEmbeddings && key == LmHeadWeightName && checkpointShapes[key].SequenceEqual(model.EmbedTokens.Weight.shape))
            || key.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal);
    }

    private static void AppendList(StringBuilder message, string title, List<string> items)
    {
        if (items.Count == 0) return;
        const int Shown = 20;
        message.Append($" {title} ({items.Count}): ").Append(string.Join(", ", items.Take(Shown)));
        if (items.Count > Shown) message.Append($", … and {items.Count - Shown} more");
        message.Append('.');
    }

    /// <summary>
    /// Counts parameters: total (the embedding counted once when tied), embedding, untied head, final norm and each layer.
    /// </summary>
    /// <returns>The counts.</returns>
    public ParameterCounts CountParameters()
    {
        var layerCounts = model.Layers.Select(l => l.ParameterCount).ToArray();
        var embedding = model.EmbedTokens.Weight.numel();
        var head = lm_head?.weight.numel() ?? 0;
        var finalNorm = model.Norm.Weight.numel();
        var total = parameters().Sum(p => p.numel());
        return new ParameterCounts(total, embedding, head, finalNorm, layerCounts);
    }

    /// <summary>The total number of parameters (embedding and head counted once when tied).</summary>
    public long ParameterCount => CountParameters().Total;
}

/// <summary>Parameter counts of an <see cref="ICausalLMModule"/> (see its implementations for what each part holds).</summary>
/// <param name="Total">Every distinct parameter (tied embedding/head counted once).</param>
/// <param name="Embedding">The token embedding.</param>
/// <param name="LmHead">The untied output projection; 0 when tied.</param>
/// <param name="FinalNorm">The final norm.</param>
/// <param name="Layers">Each decoder layer.</param>
public sealed record ParameterCounts(long Total, long Embedding, long LmHead, long FinalNorm, IReadOnlyList<long> Layers);
