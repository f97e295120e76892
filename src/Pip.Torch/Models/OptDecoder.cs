using Pip.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pip.Torch.Models;

/// <summary>
/// The OPT decoder stack (Hugging Face <c>model.decoder</c>): <c>embed_tokens</c>, <c>embed_positions</c> (learned,
/// looked up at position + 2), <c>project_out</c>/<c>project_in</c> when <c>word_embed_proj_dim</c> differs from
/// <c>hidden_size</c>, <c>final_layer_norm</c> for pre-norm models, and <c>layers</c>.
/// </summary>
public sealed class OptDecoder : nn.Module<CausalLMInput, DecoderOutput>
{
#pragma warning disable IDE1006 // Hugging Face parameter names
    private readonly TokenEmbedding embed_tokens;
    private readonly TokenEmbedding embed_positions;
    private readonly Linear? project_out;
    private readonly Linear? project_in;
    private readonly LayerNorm? final_layer_norm;
    private ModuleList<OptDecoderLayer> layers;
#pragma warning restore IDE1006
    private IReadOnlyList<OptDecoderLayer> _layerView;

    /// <summary>Creates the stack with zero-filled projections and embeddings and identity LayerNorms.</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="dtype">The parameter type.</param>
    /// <param name="device">The parameter device, or null for the CPU.</param>
    public OptDecoder(OptConfig config, ScalarType dtype, Device? device = null) : base(nameof(OptDecoder))
    {
        ArgumentNullException.ThrowIfNull(config);
        MaxPositions = config.MaxPositionEmbeddings;
        embed_tokens = new TokenEmbedding(config.VocabSize, config.WordEmbedProjDim, dtype, device);
        embed_positions = new TokenEmbedding(config.MaxPositionEmbeddings + OptConfig.PositionOffset, config.HiddenSize, dtype, device);
        if (config.HasProjections)
        {
            project_out = ModelParts.Linear(config.HiddenSize, config.WordEmbedProjDim, false, dtype, device);
            project_in = ModelParts.Linear(config.WordEmbedProjDim, config.HiddenSize, false, dtype, device);
        }
        if (config.HasFinalLayerNorm) final_layer_norm = LayerNorm(config, dtype, device);
        var list = new OptDecoderLayer[config.NumHiddenLayers];
        for (var i = 0; i < list.Length; i++) list[i] = new OptDecoderLayer(config, config.ShapeOf(i), dtype, device);
        layers = new ModuleList<OptDecoderLayer>(list);
        _layerView = Array.AsReadOnly(list);
        RegisterComponents();
    }

    /// <summary>The longest sequence (cache included) the position table covers.</summary>
    public int MaxPositions { get; }

    /// <summary>The token embedding [vocab, word_embed_proj_dim], Hugging Face name <c>embed_tokens</c>.</summary>
    public TokenEmbedding EmbedTokens => embed_tokens;

    /// <summary>The learned position table [max_position_embeddings + 2, hidden], Hugging Face name <c>embed_positions</c>.</summary>
    public TokenEmbedding EmbedPositions => embed_positions;

    /// <summary>The projection from hidden_size to word_embed_proj_dim after the layers, or null.</summary>
    public Linear? ProjectOut => project_out;

    /// <summary>The projection from word_embed_proj_dim to hidden_size before the layers, or null.</summary>
    public Linear? ProjectIn => project_in;

    /// <summary>The final LayerNorm (pre-norm models), or null.</summary>
    public LayerNorm? FinalLayerNorm => final_layer_norm;

    /// <summary>The decoder layers, Hugging Face names <c>layers.0</c> … <c>layers.N-1</c>.</summary>
    public IReadOnlyList<OptDecoderLayer> Layers => _layerView;

    /// <summary>Embeds token ids at the given positions: <c>project_in(embed_tokens(ids)) + embed_positions(positions + 2)</c>.</summary>
    /// <param name="inputIds">int64 token ids [batch, seq].</param>
    /// <param name="positions">int64 positions [batch, seq] (or broadcastable), -1 allowed for pads as transformers makes them.</param>
    /// <returns>The input of the first layer [batch, seq, hidden].</returns>
    public Tensor Embed(Tensor inputIds, Tensor positions)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(positions);
        using var scope = NewDisposeScope();
        var tokens = embed_tokens.call(inputIds);
        if (project_in is not null) tokens = project_in.call(tokens);
        var result = tokens + embed_positions.call(positions + OptConfig.PositionOffset);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Applies <c>final_layer_norm</c> (when present) and then <c>project_out</c> (when present).</summary>
    /// <param name="hidden">The output of the last layer.</param>
    /// <returns>The input of the output projection.</returns>
    public Tensor Finish(Tensor hidden)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        using var scope = NewDisposeScope();
        var h = final_layer_norm is null ? hidden.alias() : final_layer_norm.call(hidden);
        if (project_out is not null) h = project_out.call(h);
        return h.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override DecoderOutput forward(CausalLMInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var ids = input.InputIds;
        if (ids.dim() != 2)
            throw new ArgumentException($"input ids must have shape [batch, seq], got {ModelParts.Shape(ids.shape)}.", nameof(input));
        var cache = input.Cache;
        if (cache is not null && cache.LayerCount != layers.Count)
            throw new ArgumentException($"The cache has {cache.LayerCount} layers but the model has {layers.Count}.", nameof(input));
        using var scope = NewDisposeScope();
        var batch = ids.shape[0];
        var seq = ids.shape[1];
        var past = cache?.Length ?? 0;
        if (past + seq > MaxPositions)
            throw new ArgumentException($"{past + seq} positions exceed the model's max_position_embeddings ({MaxPositions}).", nameof(input));

        Tensor? padding = null;
        if (input.AttentionMask is { } attention)
        {
            if (attention.dim() != 2 || attention.shape[0] != batch || attention.shape[1] != past + seq)
                throw new ArgumentException($"The attention mask must have shape [{batch}, {past + seq}] (cached + new positions), got {ModelParts.Shape(attention.shape)}.", nameof(input));
            padding = attention.to(ScalarType.Int64, ids.device);
        }

        // Positions as transformers derives them: the running count of real tokens minus one (pads get -1).
        var positions = input.PositionIds
            ?? (padding is null
                ? arange(past, past + seq, dtype: ScalarType.Int64, device: ids.device).unsqueeze(0).expand(batch, seq)
                : (padding.cumsum(1) * padding - 1).narrow(1, past, seq));
        var hidden = Embed(ids, positions);

        Tensor? mask = null;
        if (padding is not null)
        {
            // Causal and key padding together; a row that may see nothing becomes uniform (no NaN), as in transformers' eager path.
            var allowed = ones(seq, past + seq, dtype: ScalarType.Bool, device: ids.device).tril(past).unsqueeze(0)
                .logical_and(padding.ne(0).unsqueeze(1));
            mask = where(allowed, 0.0, finfo(hidden.dtype).min).to(hidden.dtype).unsqueeze(1);
        }
        else if (seq > 1)
        {
            mask = CausalMask(seq, past, hidden.dtype, ids.device);
        }

        List<Tensor>? states = input.OutputHiddenStates ? new List<Tensor>(layers.Count + 1) : null;
        for (var i = 0; i < layers.Count; i++)
        {
            states?.Add(hidden);
            hidden = layers[i].call(hidden, mask, cache?[i]);
        }
        states?.Add(hidden);
        var last = Finish(hidden);
        last.MoveToOuterDisposeScope();
        if (states is not null)
            foreach (var s in states) s.MoveToOuterDisposeScope();
        return new DecoderOutput(last, states);
    }

    /// <summary>An additive causal mask [1, 1, seq, past + seq]: 0 where query i (at position past + i) may see key j ≤ past + i, the type's minimum elsewhere.</summary>
    internal static Tensor CausalMask(long seq, long past, ScalarType dtype, Device device)
    {
        using var scope = NewDisposeScope();
        var allowed = ones(seq, past + seq, dtype: ScalarType.Bool, device: device).tril(past);
        return where(allowed, 0.0, finfo(dtype).min).to(dtype).unsqueeze(0).unsqueeze(0).MoveToOuterDisposeScope();
    }

    /// <summary>A LayerNorm as OPT makes it (eps 1e-5, weight and bias unless <c>layer_norm_elementwise_affine</c> is false).</summary>
    internal static LayerNorm LayerNorm(OptConfig config, ScalarType dtype, Device? device) =>
        nn.LayerNorm(config.HiddenSize, OptConfig.LayerNormEps, elementwise_affine: config.LayerNormElementwiseAffine, bias: true, device: device, dtype: dtype);

    /// <summary>Replaces the layers by <paramref name="keep"/> and registers the children again in Hugging Face order (see <see cref="LlamaModel"/>).</summary>
    internal void ReplaceLayers(IReadOnlyList<OptDecoderLayer> keep)
    {
        var array = keep.ToArray();
        layers = new ModuleList<OptDecoderLayer>(array);
        _layerView = Array.AsReadOnly(array);
        ClearModules();
        register_module("embed_tokens", embed_tokens);
        register_module("embed_positions", embed_positions);
        if (project_out is not null) register_module("project_out", project_out);
        if (project_in is not null) register_module("project_in", project_in);
        if (final_layer_norm is not null) register_module("final_layer_norm", final_layer_norm);
        register_module("layers", layers);
    }
}

/// <summary>The OPT base model (Hugging Face <c>model</c>), which holds only <c>decoder</c>.</summary>
public sealed class OptModel : nn.Module<CausalLMInput, DecoderOutput>
{
#pragma warning disable IDE1006 // Hugging Face parameter names
    private readonly OptDecoder decoder;
#pragma warning restore IDE1006

    /// <summary>Creates the model.</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="dtype">The parameter type.</param>
    /// <param name="device">The parameter device, or null for the CPU.</param>
    public OptModel(OptConfig config, ScalarType dtype, Device? device = null) : base(nameof(OptModel))
    {
        decoder = new OptDecoder(config, dtype, device);
        RegisterComponents();
    }

    /// <summary>The decoder, Hugging Face name <c>decoder</c>.</summary>
    public OptDecoder Decoder => decoder;

    /// <inheritdoc/>
    public override DecoderOutput forward(CausalLMInput input) => decoder.call(input);
}
