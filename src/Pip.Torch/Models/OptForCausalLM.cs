using System.Text;
using Pip.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pip.Torch.Models;

/// <summary>
/// An OPT causal language model with Hugging Face parameter names: <c>model.decoder.*</c> (<see cref="OptDecoder"/>)
/// and <c>lm_head.weight</c>, which does not exist when <see cref="OptConfig.TieWordEmbeddings"/> is set (the default
/// for OPT: the logits then use <c>model.decoder.embed_tokens.weight</c>).
/// </summary>
/// <remarks>
/// The forward pass follows transformers' <c>OPTForCausalLM</c> (eager attention): learned positions at offset 2
/// derived from the attention mask when one is given, queries scaled by head_dim^-0.5 after <c>q_proj</c>, float32
/// softmax, pre- or post-norm layers, <c>project_in</c>/<c>project_out</c>. Dropout is not applied (inference and
/// scoring only).
/// </remarks>
public sealed class OptForCausalLM : nn.Module<CausalLMInput, CausalLMOutput>, ICausalLMModule
{
    /// <summary>The name of the untied output projection weight.</summary>
    public const string LmHeadWeightName = "lm_head.weight";

    /// <summary>The name of the token-embedding weight.</summary>
    public const string EmbedTokensWeightName = "model.decoder.embed_tokens.weight";

#pragma warning disable IDE1006 // Hugging Face parameter names
    private readonly OptModel model;
    private readonly Linear? lm_head;
#pragma warning restore IDE1006

    /// <summary>Creates a model with zero-filled projections and embeddings and identity LayerNorms, to be filled by <see cref="LoadWeights"/>.</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="dtype">The parameter type: float32, bfloat16 or float16.</param>
    /// <param name="device">The parameter device, or null for the CPU.</param>
    public OptForCausalLM(OptConfig config, ScalarType dtype = ScalarType.Float32, Device? device = null) : base(nameof(OptForCausalLM))
    {
        ValidateConfig(config);
        ModelParts.CheckDtype(dtype);
        Config = config;
        model = new OptModel(config, dtype, device);
        lm_head = config.TieWordEmbeddings ? null : ModelParts.Linear(config.WordEmbedProjDim, config.VocabSize, false, dtype, device);
        RegisterComponents();
    }

    /// <summary>
    /// Creates a randomly initialised model: normal(0, <paramref name="std"/>) for linear and embedding weights, zeros
    /// for biases, ones/zeros for LayerNorms; draws in float32 on the CPU from a generator seeded with
    /// <paramref name="seed"/>, in parameter order. Global torch state is not touched.
    /// </summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="seed">The random seed.</param>
    /// <param name="dtype">The parameter type.</param>
    /// <param name="device">The parameter device, or null for the CPU.</param>
    /// <param name="std">The standard deviation of the weights.</param>
    /// <returns>The model.</returns>
    public static OptForCausalLM CreateRandom(OptConfig config, long seed, ScalarType dtype = ScalarType.Float32, Device? device = null, double std = 0.02)
    {
        var result = new OptForCausalLM(config, dtype, device);
        try
        {
            using var generator = new Generator(unchecked((ulong)seed), CPU);
            using var noGrad = no_grad();
            var norms = new HashSet<IntPtr>(result.modules().OfType<LayerNorm>().Select(n => n.weight.Handle));
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

    /// <summary>The configuration; it follows <see cref="RemoveLayers"/> and width pruning.</summary>
    public OptConfig Config { get; private set; }

    /// <inheritdoc/>
    IModelConfig ICausalLMModule.Config => Config;

    /// <summary>The base model, Hugging Face name <c>model</c>.</summary>
    public OptModel Model => model;

    /// <summary>The decoder, <c>model.decoder</c>.</summary>
    public OptDecoder Decoder => model.Decoder;

    /// <summary>The output projection, Hugging Face name <c>lm_head</c>; null when the embeddings are tied.</summary>
    public Linear? LmHeadLinear => lm_head;

    /// <summary>The decoder layers in order.</summary>
    public IReadOnlyList<OptDecoderLayer> Layers => model.Decoder.Layers;

    /// <inheritdoc/>
    IReadOnlyList<nn.Module> ICausalLMModule.Layers => Layers;

    /// <inheritdoc/>
    public ScalarType Dtype => model.Decoder.EmbedTokens.Weight.dtype;

    /// <inheritdoc/>
    public Device Device => model.Decoder.EmbedTokens.Weight.device;

    /// <inheritdoc/>
    public Tensor Embed(Tensor inputIds)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        using var positions = arange(0, inputIds.shape[^1], dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0);
        return model.Decoder.Embed(inputIds, positions);
    }

    /// <inheritdoc/>
    public DecoderLayerContext CreateLayerContext(long length, long batch = 1) =>
        new(length, batch, null, length > 1 ? OptDecoder.CausalMask(length, 0, Dtype, Device) : null);

    /// <inheritdoc/>
    public Tensor ForwardLayer(int layer, Tensor hidden, DecoderLayerContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return model.Decoder.Layers[layer].call(hidden, context.AttentionMask, null);
    }

    /// <inheritdoc/>
    public Tensor FinalNorm(Tensor hidden) => model.Decoder.Finish(hidden);

    /// <inheritdoc/>
    public Tensor LmHead(Tensor hidden) =>
        lm_head is null ? nn.functional.linear(hidden, model.Decoder.EmbedTokens.Weight) : lm_head.call(hidden);

    /// <inheritdoc/>
    public DecoderOutput Decode(CausalLMInput input) => model.call(input);

    /// <inheritdoc/>
    public override CausalLMOutput forward(CausalLMInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var decoded = model.call(input);
        using var last = decoded.LastHiddenState;
        var logits = LmHead(last);
        return new CausalLMOutput(logits, decoded.HiddenStates, input.Cache);
    }

    /// <inheritdoc/>
    public Tensor Logits(Tensor inputIds)
    {
        using var output = call(new CausalLMInput(inputIds));
        return output.Logits.alias();
    }

    /// <summary>Removes whole decoder layers, disposes them and renumbers the others (<c>model.decoder.layers.0</c> …); <see cref="Config"/> follows.</summary>
    /// <param name="indices">Current indices of the layers to remove; duplicates are ignored.</param>
    /// <returns>The new configuration.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An index is not a current layer.</exception>
    public OptConfig RemoveLayers(IReadOnlyCollection<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        var current = model.Decoder.Layers;
        var bad = indices.Where(i => i < 0 || i >= current.Count).Distinct().OrderBy(i => i).ToArray();
        if (bad.Length > 0)
            throw new ArgumentOutOfRangeException(nameof(indices), $"Layer indices {string.Join(", ", bad)} are out of range: the model has {current.Count} layers.");
        var remove = new HashSet<int>(indices);
        var keep = current.Where((_, i) => !remove.Contains(i)).ToArray();
        model.Decoder.ReplaceLayers(keep);
        foreach (var i in remove) current[i].Dispose();
        Config = (Config with { NumHiddenLayers = keep.Length, LayerShapes = null }).WithLayerShapes(keep.Select(l => l.Shape).ToArray());
        return Config;
    }

    /// <inheritdoc/>
    IModelConfig ICausalLMModule.RemoveLayers(IReadOnlyCollection<int> indices) => RemoveLayers(indices);

    /// <summary>Sets <see cref="Config"/> from the current layer shapes (after width pruning).</summary>
    /// <returns>The new configuration.</returns>
    internal OptConfig SyncLayerShapes()
    {
        Config = Config.WithLayerShapes(model.Decoder.Layers.Select(l => l.Shape).ToArray());
        return Config;
    }

    /// <inheritdoc/>
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
    /// every parameter must be present with its shape and no other key may be given, except that
    /// <c>lm_head.weight</c> is ignored when the embeddings are tied (if it has the embedding's shape). Checkpoints
    /// saved from <c>OPTModel</c> (keys <c>decoder.*</c> without the <c>model.</c> prefix, as some original OPT
    /// uploads) are accepted, as transformers accepts them.
    /// </summary>
    /// <param name="checkpointShapes">Checkpoint tensor name → shape.</param>
    /// <returns>Checkpoint tensor name → the live parameter it fills (do not dispose).</returns>
    /// <exception cref="ArgumentException">Names are missing or unexpected, or shapes differ; the message lists them all.</exception>
    public IReadOnlyDictionary<string, Tensor> WeightTargets(IReadOnlyDictionary<string, long[]> checkpointShapes)
    {
        ArgumentNullException.ThrowIfNull(checkpointShapes);
        var unprefixed = !checkpointShapes.Keys.Any(k => k.StartsWith("model.", StringComparison.Ordinal)) && checkpointShapes.Keys.Any(k => k.StartsWith("decoder.", StringComparison.Ordinal));
        string OwnName(string key) => unprefixed && key.StartsWith("decoder.", StringComparison.Ordinal) ? "model." + key : key;
        var shapes = checkpointShapes.ToDictionary(kv => OwnName(kv.Key), kv => kv.Value, StringComparer.Ordinal);
        var own = NamedWeights();
        var embedShape = model.Decoder.EmbedTokens.Weight.shape;
        bool Ignorable(string key) => Config.TieWordEmbeddings && key == LmHeadWeightName && shapes[key].SequenceEqual(embedShape);
        var missing = own.Keys.Where(k => !shapes.ContainsKey(k)).ToList();
        var unexpected = shapes.Keys.Where(k => !own.ContainsKey(k) && !Ignorable(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var mismatched = new List<string>();
        foreach (var (name, p) in own)
        {
            if (shapes.TryGetValue(name, out var shape) && !shape.SequenceEqual(p.shape))
                mismatched.Add($"{name}: checkpoint {ModelParts.Shape(shape)}, model {ModelParts.Shape(p.shape)}");
        }
        if (missing.Count + unexpected.Count + mismatched.Count > 0)
        {
            var message = new StringBuilder("The weights do not match the model");
            message.Append($" (OPT, {Config.NumHiddenLayers} layers, hidden {Config.HiddenSize}, word_embed_proj_dim {Config.WordEmbedProjDim}, pre-norm: {Config.DoLayerNormBefore}, tied embeddings: {Config.TieWordEmbeddings}"
                + (Config.IsHeterogeneous ? ", per-layer shapes" : "") + ").");
            Append(message, "Missing", missing);
            Append(message, "Unexpected", unexpected);
            Append(message, "Shape mismatch", mismatched);
            throw new ArgumentException(message.ToString(), nameof(checkpointShapes));
        }
        var byOwn = checkpointShapes.Keys.Where(k => own.ContainsKey(OwnName(k))).ToDictionary(k => k, k => own[OwnName(k)], StringComparer.Ordinal);
        return byOwn;
    }

    private static void Append(StringBuilder message, string title, List<string> items)
    {
        if (items.Count == 0) return;
        const int Shown = 20;
        message.Append($" {title} ({items.Count}): ").Append(string.Join(", ", items.Take(Shown)));
        if (items.Count > Shown) message.Append($", … and {items.Count - Shown} more");
        message.Append('.');
    }

    /// <summary>
    /// Counts parameters. <see cref="ParameterCounts.Embedding"/> holds the token and position tables and
    /// <c>project_in</c>; <see cref="ParameterCounts.FinalNorm"/> holds <c>final_layer_norm</c> and <c>project_out</c>.
    /// </summary>
    /// <returns>The counts.</returns>
    public ParameterCounts CountParameters()
    {
        var decoder = model.Decoder;
        var layerCounts = decoder.Layers.Select(l => l.ParameterCount).ToArray();
        var embedding = decoder.EmbedTokens.Weight.numel() + decoder.EmbedPositions.Weight.numel() + (decoder.ProjectIn?.weight!.numel() ?? 0);
        var finalNorm = (decoder.FinalLayerNorm?.parameters().Sum(p => p.numel()) ?? 0) + (decoder.ProjectOut?.weight!.numel() ?? 0);
        var head = lm_head?.weight!.numel() ?? 0;
        var total = parameters().Sum(p => p.numel());
        return new ParameterCounts(total, embedding, head, finalNorm, layerCounts);
    }

    /// <summary>Checks that a configuration is one this implementation runs.</summary>
    /// <param name="config">The configuration.</param>
    /// <exception cref="ArgumentException">A size is not positive, or the activation is unknown.</exception>
    public static void ValidateConfig(OptConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var problems = new List<string>();
        if (config.VocabSize <= 0) problems.Add($"vocab_size must be positive, got {config.VocabSize}");
        if (config.HiddenSize <= 0) problems.Add($"hidden_size must be positive, got {config.HiddenSize}");
        if (config.WordEmbedProjDim <= 0) problems.Add($"word_embed_proj_dim must be positive, got {config.WordEmbedProjDim}");
        if (config.FfnDim <= 0) problems.Add($"ffn_dim must be positive, got {config.FfnDim}");
        if (config.NumHiddenLayers < 0) problems.Add($"num_hidden_layers must not be negative, got {config.NumHiddenLayers}");
        if (config.NumAttentionHeads <= 0) problems.Add($"num_attention_heads must be positive, got {config.NumAttentionHeads}");
        if (config.HeadDim <= 0) problems.Add($"head_dim must be positive, got {config.HeadDim}");
        if (config.MaxPositionEmbeddings <= 0) problems.Add($"max_position_embeddings must be positive, got {config.MaxPositionEmbeddings}");
        if (config.ActivationFunction is not ("relu" or "gelu" or "silu")) problems.Add($"activation_function '{config.ActivationFunction}' is not supported (relu, gelu, silu)");
        if (config.LayerShapes is { } shapes)
        {
            if (shapes.Count != config.NumHiddenLayers) problems.Add($"{shapes.Count} per-layer shapes were given for {config.NumHiddenLayers} layers");
            else if (shapes.Any(s => s is null || s.NumAttentionHeads <= 0 || s.FfnDim <= 0)) problems.Add("every per-layer shape needs positive sizes");
        }
        if (problems.Count > 0)
            throw new ArgumentException("Unsupported OPT configuration: " + string.Join("; ", problems) + ".", nameof(config));
    }
}
