using Pip.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pip.Torch.Models;

/// <summary>The decoder stack (Hugging Face <c>model</c>): <c>embed_tokens</c>, <c>layers</c>, <c>norm</c>.</summary>
public sealed class LlamaModel : nn.Module<CausalLMInput, DecoderOutput>
{
#pragma warning disable IDE1006 // Hugging Face parameter names
    private readonly TokenEmbedding embed_tokens;
    private ModuleList<LlamaDecoderLayer> layers;
    private readonly RmsNorm norm;
#pragma warning restore IDE1006
    private IReadOnlyList<LlamaDecoderLayer> _layerView;

    /// <summary>Creates the stack with zero-filled projections/embeddings and all-ones norms.</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="dtype">The parameter type (float32, bfloat16 or float16).</param>
    /// <param name="device">The parameter device, or null for the CPU.</param>
    public LlamaModel(LlamaConfig config, ScalarType dtype, Device? device = null) : base(nameof(LlamaModel))
    {
        ValidateConfig(config);
        ModelParts.CheckDtype(dtype);
        Rotary = new RotaryEmbedding(config);
        embed_tokens = new TokenEmbedding(config.VocabSize, config.HiddenSize, dtype, device);
        var list = new LlamaDecoderLayer[config.NumHiddenLayers];
        for (var i = 0; i < list.Length; i++) list[i] = new LlamaDecoderLayer(config, config.ShapeOf(i), dtype, device);
        layers = new ModuleList<LlamaDecoderLayer>(list);
        _layerView = Array.AsReadOnly(list);
        norm = new RmsNorm(config.HiddenSize, config.RmsNormEps, dtype, device);
        RegisterComponents();
    }

    /// <summary>The rotary embedding shared by all layers.</summary>
    public RotaryEmbedding Rotary { get; }

    /// <summary>The token embedding, Hugging Face name <c>embed_tokens</c>.</summary>
    public TokenEmbedding EmbedTokens => embed_tokens;

    /// <summary>The decoder layers, Hugging Face names <c>layers.0</c> … <c>layers.N-1</c>.</summary>
    public IReadOnlyList<LlamaDecoderLayer> Layers => _layerView;

    /// <summary>The final norm, Hugging Face name <c>norm</c>.</summary>
    public RmsNorm Norm => norm;

    /// <summary>Embeds token ids [batch, seq] into hidden states [batch, seq, hidden].</summary>
    /// <param name="inputIds">int64 token ids.</param>
    /// <returns>The embeddings.</returns>
    public Tensor Embed(Tensor inputIds) => embed_tokens.call(inputIds);

    /// <inheritdoc/>
    public override DecoderOutput forward(CausalLMInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.AttentionMask is not null)
            throw new NotSupportedException("Llama-layout models take no attention mask: sequences in a batch must have equal lengths (right padding is exact for causal models when the pads are ignored).");
        var ids = input.InputIds;
        if (ids.dim() != 2)
            throw new ArgumentException($"input ids must have shape [batch, seq], got {ModelParts.Shape(ids.shape)}.", nameof(input));
        var cache = input.Cache;
        if (cache is not null && cache.LayerCount != layers.Count)
            throw new ArgumentException($"The cache has {cache.LayerCount} layers but the model has {layers.Count}.", nameof(input));

        using var scope = NewDisposeScope();
        var batch = ids.shape[0];
        var seq = ids.shape[1];
        var hidden = embed_tokens.call(ids);
        var past = cache?.Length ?? 0;
        var positions = input.PositionIds
            ?? arange(past, past + seq, dtype: ScalarType.Int64, device: ids.device).unsqueeze(0).expand(batch, seq);
        using var rope = Rotary.Compute(positions, hidden.dtype);

        List<Tensor>? states = input.OutputHiddenStates ? new List<Tensor>(layers.Count + 1) : null;
        for (var i = 0; i < layers.Count; i++)
        {
            states?.Add(hidden);
            hidden = layers[i].call(hidden, rope, cache?[i]);
        }
        states?.Add(hidden);
        var last = norm.call(hidden);

        last.MoveToOuterDisposeScope();
        if (states is not null)
            foreach (var s in states) s.MoveToOuterDisposeScope();
        return new DecoderOutput(last, states);
    }

    /// <summary>
    /// Replaces the decoder layers by <paramref name="keep"/> (in order) and re-registers them as
    /// <c>layers.0</c> … <c>layers.K-1</c>. Layers not kept are not disposed here.
    /// </summary>
    /// <remarks>
    /// TorchSharp's <see cref="ModuleList{T}"/> registers its items as "0", "1", … once, on first registration, and
    /// never again; removing items from it would leave the old names registered. So a fresh list is built, and this
    /// module's children are registered again in their original order. The old list is not disposed (that would
    /// dispose the kept layers it still references); it holds no parameters of its own.
    /// </remarks>
    internal void ReplaceLayers(IReadOnlyList<LlamaDecoderLayer> keep)
    {
        var array = keep.ToArray();
        layers = new ModuleList<LlamaDecoderLayer>(array);
        _layerView = Array.AsReadOnly(array);
        ClearModules();
        register_module("embed_tokens", embed_tokens);
        register_module("layers", layers);
        register_module("norm", norm);
    }

    /// <summary>Checks that a configuration is one this implementation runs.</summary>
    /// <param name="config">The configuration.</param>
    /// <exception cref="ArgumentException">A size is not positive, heads do not divide, or the activation is not SiLU.</exception>
    /// <exception cref="NotSupportedException">The rope scaling type is not supported.</exception>
    public static void ValidateConfig(LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var problems = new List<string>();
        if (config.VocabSize <= 0) problems.Add($"vocab_size must be positive, got {config.VocabSize}");
        if (config.HiddenSize <= 0) problems.Add($"hidden_size must be positive, got {config.HiddenSize}");
        if (config.IntermediateSize <= 0) problems.Add($"intermediate_size must be positive, got {config.IntermediateSize}");
        if (config.NumHiddenLayers < 0) problems.Add($"num_hidden_layers must not be negative, got {config.NumHiddenLayers}");
        if (config.NumAttentionHeads <= 0) problems.Add($"num_attention_heads must be positive, got {config.NumAttentionHeads}");
        if (config.NumKeyValueHeads <= 0) problems.Add($"num_key_value_heads must be positive, got {config.NumKeyValueHeads}");
        else if (config.NumAttentionHeads % config.NumKeyValueHeads != 0)
            problems.Add($"num_attention_heads ({config.NumAttentionHeads}) must be a multiple of num_key_value_heads ({config.NumKeyValueHeads})");
        if (config.LayerShapes is { } shapes)
        {
            if (shapes.Count != config.NumHiddenLayers)
                problems.Add($"{shapes.Count} per-layer shapes were given for {config.NumHiddenLayers} layers");
            else
            {
                for (var i = 0; i < shapes.Count; i++)
                {
                    var shape = shapes[i];
                    if (shape is null || shape.NumAttentionHeads <= 0 || shape.NumKeyValueHeads <= 0 || shape.IntermediateSize <= 0 || shape.NumAttentionHeads % shape.NumKeyValueHeads != 0)
                        problems.Add($"layer {i} has an invalid shape ({shape?.ToString() ?? "null"}): sizes must be positive and num_key_value_heads must divide num_attention_heads");
                }
            }
        }
        if (config.HeadDim <= 0 || config.HeadDim % 2 != 0) problems.Add($"head_dim must be positive and even, got {config.HeadDim}");
        if (!(config.RmsNormEps > 0)) problems.Add($"rms_norm_eps must be positive, got {config.RmsNormEps}");
        if (!string.Equals(config.HiddenAct, "silu", StringComparison.OrdinalIgnoreCase))
            problems.Add($"hidden_act '{config.HiddenAct}' is not supported (only 'silu')");
        if (problems.Count > 0)
            throw new ArgumentException("Unsupported model configuration: " + string.Join("; ", problems) + ".", nameof(config));
        if (config.RopeScaling is { } s && s.RopeType.ToLowerInvariant() is not ("default" or "llama3"))
            throw new NotSupportedException($"rope_scaling type '{s.RopeType}' is not supported; Pip implements 'default' and 'llama3'.");
    }
}
