using System.Text.Json.Nodes;

namespace Pip.Checkpoints;

/// <summary>The decoder families that share the Llama layout.</summary>
public enum DecoderFamily
{
    /// <summary><c>LlamaForCausalLM</c>.</summary>
    Llama,
    /// <summary><c>MistralForCausalLM</c> (Llama layout; sliding window ignored for sequences shorter than it).</summary>
    Mistral,
    /// <summary><c>Qwen2ForCausalLM</c> (Llama layout with q/k/v biases).</summary>
    Qwen2,
}

/// <summary>Rotary-embedding scaling as in <c>rope_scaling</c> of a Hugging Face config.</summary>
/// <param name="RopeType">The scaling type; Pip implements <c>llama3</c> and <c>default</c>.</param>
/// <param name="Factor">The scaling factor.</param>
/// <param name="LowFreqFactor">llama3: the low-frequency factor.</param>
/// <param name="HighFreqFactor">llama3: the high-frequency factor.</param>
/// <param name="OriginalMaxPositionEmbeddings">llama3: the context length the model was trained with.</param>
public sealed record RopeScaling(string RopeType, double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositionEmbeddings);

/// <summary>The sizes of one decoder layer that width pruning can change.</summary>
/// <param name="NumAttentionHeads">The number of query heads (<c>num_attention_heads</c>).</param>
/// <param name="NumKeyValueHeads">The number of key/value heads (<c>num_key_value_heads</c>); divides <paramref name="NumAttentionHeads"/>.</param>
/// <param name="IntermediateSize">The MLP width (<c>intermediate_size</c>).</param>
public sealed record LayerShape(int NumAttentionHeads, int NumKeyValueHeads, int IntermediateSize);

/// <summary>
/// The configuration of a Llama-layout decoder (Llama, Mistral, Qwen2), as read from a Hugging Face <c>config.json</c>.
/// </summary>
/// <remarks>
/// Immutable. <see cref="Raw"/> keeps every key of the file so that a saved copy loses nothing it does not understand;
/// the serializer writes typed properties over the raw keys, so a changed copy (fewer layers, say) stays consistent.
/// </remarks>
public sealed record LlamaConfig : IModelConfig
{
    /// <summary>The model family (from <c>architectures</c>/<c>model_type</c>).</summary>
    public required DecoderFamily Family { get; init; }

    /// <summary><c>vocab_size</c>.</summary>
    public required int VocabSize { get; init; }

    /// <summary><c>hidden_size</c>.</summary>
    public required int HiddenSize { get; init; }

    /// <summary><c>intermediate_size</c>.</summary>
    public required int IntermediateSize { get; init; }

    /// <summary><c>num_hidden_layers</c>.</summary>
    public required int NumHiddenLayers { get; init; }

    /// <summary><c>num_attention_heads</c>.</summary>
    public required int NumAttentionHeads { get; init; }

    /// <summary><c>num_key_value_heads</c> (defaults to <see cref="NumAttentionHeads"/>).</summary>
    public required int NumKeyValueHeads { get; init; }

    /// <summary><c>head_dim</c> (defaults to hidden_size / num_attention_heads).</summary>
    public required int HeadDim { get; init; }

    /// <summary><c>rms_norm_eps</c>.</summary>
    public double RmsNormEps { get; init; } = 1e-6;

    /// <summary><c>rope_theta</c>.</summary>
    public double RopeTheta { get; init; } = 10000.0;

    /// <summary><c>rope_scaling</c>, or null.</summary>
    public RopeScaling? RopeScaling { get; init; }

    /// <summary><c>max_position_embeddings</c>.</summary>
    public int MaxPositionEmbeddings { get; init; } = 2048;

    /// <summary><c>tie_word_embeddings</c>.</summary>
    public bool TieWordEmbeddings { get; init; }

    /// <summary>Whether q/k/v projections have biases (<c>attention_bias</c>; always true for Qwen2).</summary>
    public bool AttentionBias { get; init; }

    /// <summary>Whether the MLP projections have biases (<c>mlp_bias</c>).</summary>
    public bool MlpBias { get; init; }

    /// <summary><c>hidden_act</c>; only <c>silu</c> is supported.</summary>
    public string HiddenAct { get; init; } = "silu";

    /// <summary><c>torch_dtype</c> (or <c>dtype</c>): <c>float32</c>, <c>float16</c> or <c>bfloat16</c>; null if absent.</summary>
    public string? TorchDtype { get; init; }

    /// <summary><c>bos_token_id</c>, or null.</summary>
    public int? BosTokenId { get; init; }

    /// <summary><c>eos_token_id</c> (one or several), empty if absent.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = Array.Empty<int>();

    /// <summary>Every key of the source file, for lossless saving. Null for a config built in code.</summary>
    public JsonObject? Raw { get; init; }

    /// <inheritdoc/>
    public string ModelType => Family switch
    {
        DecoderFamily.Mistral => "mistral",
        DecoderFamily.Qwen2 => "qwen2",
        _ => "llama",
    };

    /// <inheritdoc/>
    public string Architecture => Family switch
    {
        DecoderFamily.Mistral => "MistralForCausalLM",
        DecoderFamily.Qwen2 => "Qwen2ForCausalLM",
        _ => "LlamaForCausalLM",
    };

    /// <inheritdoc/>
    public IModelConfig WithTorchDtype(string? torchDtype) => this with { TorchDtype = torchDtype };

    /// <inheritdoc/>
    public string Serialize() => LlamaConfigSerializer.Serialize(this);

    /// <summary>Number of query heads that share one key/value head (global value; see <see cref="ShapeOf"/>).</summary>
    public int GroupSize => NumAttentionHeads / NumKeyValueHeads;

    /// <summary>
    /// The shape of every layer, when layers differ (after width pruning), or null when every layer has
    /// <see cref="GlobalShape"/>. Saved as the sparse <c>per_layer_config</c> of transformers (PR #45333): the layers
    /// whose values differ from the global <c>num_attention_heads</c>, <c>num_key_value_heads</c> and
    /// <c>intermediate_size</c> list those values. When not null, it has <see cref="NumHiddenLayers"/> entries.
    /// </summary>
    public IReadOnlyList<LayerShape>? LayerShapes { get; init; }

    /// <summary>The global (default) layer shape: <see cref="NumAttentionHeads"/>, <see cref="NumKeyValueHeads"/>, <see cref="IntermediateSize"/>.</summary>
    public LayerShape GlobalShape => new(NumAttentionHeads, NumKeyValueHeads, IntermediateSize);

    /// <summary>Whether some layer's shape differs from <see cref="GlobalShape"/>.</summary>
    public bool IsHeterogeneous => LayerShapes is not null && LayerShapes.Any(s => s != GlobalShape);

    /// <summary>The shape of one layer: its entry of <see cref="LayerShapes"/>, or <see cref="GlobalShape"/>.</summary>
    /// <param name="layer">The layer index, 0 … <see cref="NumHiddenLayers"/>-1.</param>
    /// <exception cref="ArgumentOutOfRangeException">The index is not a layer.</exception>
    /// <exception cref="InvalidOperationException"><see cref="LayerShapes"/> does not have <see cref="NumHiddenLayers"/> entries.</exception>
    public LayerShape ShapeOf(int layer)
    {
        if (layer < 0 || layer >= NumHiddenLayers)
            throw new ArgumentOutOfRangeException(nameof(layer), layer, $"The model has {NumHiddenLayers} layers.");
        if (LayerShapes is null)
            return GlobalShape;
        if (LayerShapes.Count != NumHiddenLayers)
            throw new InvalidOperationException($"The configuration lists {LayerShapes.Count} layer shapes for {NumHiddenLayers} layers.");
        return LayerShapes[layer];
    }

    /// <summary>
    /// A copy with the given per-layer shapes, in canonical form: if all layers have one shape, it becomes the global
    /// shape and <see cref="LayerShapes"/> is null (a standard checkpoint); otherwise the global shape becomes the most
    /// common one (attention heads and key/value heads chosen as a pair; ties go to the larger value), so that the
    /// fewest layers need overrides. <see cref="HeadDim"/> is kept.
    /// </summary>
    /// <param name="shapes">One shape per layer (<see cref="NumHiddenLayers"/> of them); an empty list keeps the global shape.</param>
    /// <returns>The new configuration.</returns>
    /// <exception cref="ArgumentException">The count differs from <see cref="NumHiddenLayers"/>, or a shape is invalid.</exception>
    public LlamaConfig WithLayerShapes(IReadOnlyList<LayerShape> shapes)
    {
        ArgumentNullException.ThrowIfNull(shapes);
        if (shapes.Count != NumHiddenLayers)
            throw new ArgumentException($"{shapes.Count} layer shapes were given for {NumHiddenLayers} layers.", nameof(shapes));
        for (var i = 0; i < shapes.Count; i++)
        {
            var s = shapes[i] ?? throw new ArgumentException($"The shape of layer {i} is null.", nameof(shapes));
            if (s.NumAttentionHeads <= 0 || s.NumKeyValueHeads <= 0 || s.IntermediateSize <= 0 || s.NumAttentionHeads % s.NumKeyValueHeads != 0)
                throw new ArgumentException($"The shape of layer {i} is invalid: {s} (sizes must be positive and the key/value heads must divide the heads).", nameof(shapes));
        }
        if (shapes.Count == 0)
            return this with { LayerShapes = null };

        var heads = shapes.GroupBy(s => (s.NumAttentionHeads, s.NumKeyValueHeads))
            .OrderByDescending(g => g.Count()).ThenByDescending(g => g.Key.NumAttentionHeads).ThenByDescending(g => g.Key.NumKeyValueHeads)
            .First().Key;
        var intermediate = shapes.GroupBy(s => s.IntermediateSize)
            .OrderByDescending(g => g.Count()).ThenByDescending(g => g.Key)
            .First().Key;
        var global = new LayerShape(heads.NumAttentionHeads, heads.NumKeyValueHeads, intermediate);
        return this with
        {
            NumAttentionHeads = global.NumAttentionHeads,
            NumKeyValueHeads = global.NumKeyValueHeads,
            IntermediateSize = global.IntermediateSize,
            LayerShapes = shapes.All(s => s == global) ? null : shapes.ToArray(),
        };
    }
}
