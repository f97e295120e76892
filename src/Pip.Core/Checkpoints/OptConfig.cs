using System.Text.Json.Nodes;

namespace Pip.Checkpoints;

/// <summary>The sizes of one OPT decoder layer that width pruning can change.</summary>
/// <param name="NumAttentionHeads">The number of attention heads (<c>num_attention_heads</c>).</param>
/// <param name="FfnDim">The feed-forward width (<c>ffn_dim</c>).</param>
public sealed record OptLayerShape(int NumAttentionHeads, int FfnDim);

/// <summary>
/// The configuration of a Hugging Face <c>OPTForCausalLM</c> (model_type <c>opt</c>), as read from its
/// <c>config.json</c> by <see cref="OptConfigSerializer"/>.
/// </summary>
/// <remarks>
/// <para>OPT differs from the Llama layout: learned position embeddings (a table of
/// <see cref="MaxPositionEmbeddings"/> + <see cref="PositionOffset"/> rows, looked up at position + 2), LayerNorm
/// with weight and bias (eps 1e-5, as <c>torch.nn.LayerNorm</c>), a two-matrix MLP <c>fc2(act(fc1(x)))</c>, biases
/// on every projection (<see cref="EnableBias"/>), post-norm layers when <see cref="DoLayerNormBefore"/> is false
/// (opt-350m), an optional <c>project_in</c>/<c>project_out</c> pair when <see cref="WordEmbedProjDim"/> differs
/// from <see cref="HiddenSize"/>, and a final LayerNorm only for pre-norm models.</para>
/// <para>Immutable. <see cref="Raw"/> keeps every key of the file so that a saved copy loses nothing.</para>
/// </remarks>
public sealed record OptConfig : IModelConfig
{
    /// <summary>The offset of the learned position table: position p is row p + 2 (a fairseq legacy).</summary>
    public const int PositionOffset = 2;

    /// <summary>The epsilon of every LayerNorm (the <c>torch.nn.LayerNorm</c> default, which OPT uses).</summary>
    public const double LayerNormEps = 1e-5;

    /// <summary><c>vocab_size</c>.</summary>
    public required int VocabSize { get; init; }

    /// <summary><c>hidden_size</c>.</summary>
    public required int HiddenSize { get; init; }

    /// <summary><c>ffn_dim</c>: the width of <c>fc1</c>.</summary>
    public required int FfnDim { get; init; }

    /// <summary><c>num_hidden_layers</c>.</summary>
    public required int NumHiddenLayers { get; init; }

    /// <summary><c>num_attention_heads</c>.</summary>
    public required int NumAttentionHeads { get; init; }

    /// <summary>
    /// The width of one head: hidden_size / num_attention_heads, unless the file has <c>head_dim</c> (which Pip
    /// writes after removing heads; transformers' OPT ignores that key and cannot load such a model).
    /// </summary>
    public required int HeadDim { get; init; }

    /// <summary><c>word_embed_proj_dim</c>: the width of the token embedding (defaults to <see cref="HiddenSize"/>).</summary>
    public required int WordEmbedProjDim { get; init; }

    /// <summary><c>max_position_embeddings</c>.</summary>
    public int MaxPositionEmbeddings { get; init; } = 2048;

    /// <summary><c>do_layer_norm_before</c>: pre-norm layers (true for every OPT size but 350m).</summary>
    public bool DoLayerNormBefore { get; init; } = true;

    /// <summary><c>_remove_final_layer_norm</c>: a legacy switch that drops the final LayerNorm of a pre-norm model.</summary>
    public bool RemoveFinalLayerNorm { get; init; }

    /// <summary><c>enable_bias</c>: whether q/k/v/out_proj, fc1 and fc2 have biases.</summary>
    public bool EnableBias { get; init; } = true;

    /// <summary><c>layer_norm_elementwise_affine</c>: whether the LayerNorms have a weight and a bias.</summary>
    public bool LayerNormElementwiseAffine { get; init; } = true;

    /// <summary><c>activation_function</c>: <c>relu</c> (OPT), <c>gelu</c> or <c>silu</c>.</summary>
    public string ActivationFunction { get; init; } = "relu";

    /// <summary><c>tie_word_embeddings</c> (true by default for OPT: <c>lm_head</c> uses the token embedding).</summary>
    public bool TieWordEmbeddings { get; init; } = true;

    /// <summary><c>torch_dtype</c> (or <c>dtype</c>): <c>float32</c>, <c>float16</c> or <c>bfloat16</c>; null if absent.</summary>
    public string? TorchDtype { get; init; }

    /// <summary><c>bos_token_id</c>, or null.</summary>
    public int? BosTokenId { get; init; } = 2;

    /// <summary><c>eos_token_id</c> (one or several), empty if absent.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [2];

    /// <summary><c>pad_token_id</c>, or null.</summary>
    public int? PadTokenId { get; init; } = 1;

    /// <summary>
    /// The shape of every layer when layers differ (after width pruning), or null when all have
    /// <see cref="GlobalShape"/>. Saved as a sparse <c>per_layer_config</c> with the attributes
    /// <c>num_attention_heads</c> and <c>ffn_dim</c> (the format of transformers PR #45333, which transformers' OPT
    /// does not read).
    /// </summary>
    public IReadOnlyList<OptLayerShape>? LayerShapes { get; init; }

    /// <summary>Every key of the source file, for lossless saving. Null for a config built in code.</summary>
    public JsonObject? Raw { get; init; }

    /// <inheritdoc/>
    public string ModelType => OptConfigSerializer.ModelType;

    /// <inheritdoc/>
    public string Architecture => OptConfigSerializer.ArchitectureName;

    /// <summary>Whether the decoder ends with <c>final_layer_norm</c> (pre-norm models without <c>_remove_final_layer_norm</c>).</summary>
    public bool HasFinalLayerNorm => DoLayerNormBefore && !RemoveFinalLayerNorm;

    /// <summary>Whether the decoder has <c>project_in</c>/<c>project_out</c> (<see cref="WordEmbedProjDim"/> ≠ <see cref="HiddenSize"/>).</summary>
    public bool HasProjections => WordEmbedProjDim != HiddenSize;

    /// <summary>The global layer shape: <see cref="NumAttentionHeads"/>, <see cref="FfnDim"/>.</summary>
    public OptLayerShape GlobalShape => new(NumAttentionHeads, FfnDim);

    /// <summary>Whether some layer's shape differs from <see cref="GlobalShape"/>.</summary>
    public bool IsHeterogeneous => LayerShapes is not null && LayerShapes.Any(s => s != GlobalShape);

    /// <summary>The shape of one layer: its entry of <see cref="LayerShapes"/>, or <see cref="GlobalShape"/>.</summary>
    /// <param name="layer">The layer index.</param>
    /// <exception cref="ArgumentOutOfRangeException">The index is not a layer.</exception>
    public OptLayerShape ShapeOf(int layer)
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
    /// A copy with the given per-layer shapes in canonical form: all equal ⇒ they become the global shape and
    /// <see cref="LayerShapes"/> is null (a standard checkpoint); otherwise the most common head count and FFN width
    /// (ties to the larger) become global. <see cref="HeadDim"/> is kept.
    /// </summary>
    /// <param name="shapes">One shape per layer.</param>
    /// <returns>The new configuration.</returns>
    /// <exception cref="ArgumentException">The count differs from <see cref="NumHiddenLayers"/> or a size is not positive.</exception>
    public OptConfig WithLayerShapes(IReadOnlyList<OptLayerShape> shapes)
    {
        ArgumentNullException.ThrowIfNull(shapes);
        if (shapes.Count != NumHiddenLayers)
            throw new ArgumentException($"{shapes.Count} layer shapes were given for {NumHiddenLayers} layers.", nameof(shapes));
        for (var i = 0; i < shapes.Count; i++)
        {
            var s = shapes[i] ?? throw new ArgumentException($"The shape of layer {i} is null.", nameof(shapes));
            if (s.NumAttentionHeads <= 0 || s.FfnDim <= 0)
                throw new ArgumentException($"The shape of layer {i} is invalid: {s} (sizes must be positive).", nameof(shapes));
        }
        if (shapes.Count == 0)
            return this with { LayerShapes = null };
        var heads = shapes.GroupBy(s => s.NumAttentionHeads).OrderByDescending(g => g.Count()).ThenByDescending(g => g.Key).First().Key;
        var ffn = shapes.GroupBy(s => s.FfnDim).OrderByDescending(g => g.Count()).ThenByDescending(g => g.Key).First().Key;
        var global = new OptLayerShape(heads, ffn);
        return this with
        {
            NumAttentionHeads = heads,
            FfnDim = ffn,
            LayerShapes = shapes.All(s => s == global) ? null : shapes.ToArray(),
        };
    }

    /// <inheritdoc/>
    public IModelConfig WithTorchDtype(string? torchDtype) => this with { TorchDtype = torchDtype };

    /// <inheritdoc/>
    public string Serialize() => OptConfigSerializer.Serialize(this);
}
