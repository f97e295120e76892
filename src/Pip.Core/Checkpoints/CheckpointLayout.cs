namespace Pip.Checkpoints;

/// <summary>How a model whose layers differ in width (after width pruning) is written as a checkpoint.</summary>
/// <remarks>
/// A model whose layers all have one shape is written the same way in every layout: a standard configuration
/// without <c>per_layer_config</c>. See <see cref="CheckpointLayouts"/> for the rules.
/// </remarks>
public enum CheckpointLayout
{
    /// <summary>
    /// <see cref="Compatible"/> when the layers can be given one shape exactly (see
    /// <see cref="CheckpointLayouts.CompatibleObstacle"/>), <see cref="PerLayer"/> otherwise.
    /// </summary>
    Auto,

    /// <summary>
    /// Every layer stored at its own size, the sizes that differ listed in <c>per_layer_config</c>: the smallest
    /// checkpoint, read by Pip; Hugging Face transformers' Llama and OPT model classes build every layer from the
    /// global sizes, so they do not load it.
    /// </summary>
    PerLayer,

    /// <summary>
    /// One shape for every layer, as released Hugging Face transformers builds them: each layer padded to the
    /// largest kept size with exact zeros (zero q/k/v rows and o_proj columns for a key/value group, zero gate/up rows
    /// and down_proj columns for a channel; the Llama family: more zero key/value groups where needed for the heads to
    /// divide <c>hidden_size</c>; OPT: its heads back to <c>hidden_size / head_dim</c>), which leaves the model's
    /// function unchanged. Refused when no such shape exists.
    /// </summary>
    Compatible,
}

/// <summary>The rules of <see cref="CheckpointLayout"/>: when a compatible form exists, and its configuration.</summary>
/// <remarks>
/// <para>Llama, Mistral and Qwen2 in transformers read <c>head_dim</c> from the configuration (Pip always writes it),
/// so a layer may have fewer heads than <c>hidden_size / head_dim</c>; every layer must have the same number of query
/// heads per key/value head, though, since one <c>num_attention_heads</c> and one <c>num_key_value_heads</c> apply to
/// all. Width pruning removes whole key/value groups, which keeps that ratio, so only a source checkpoint whose
/// layers already differed in it has no compatible form. The compatible shape has the largest number of key/value
/// groups and the largest MLP width of any layer; for the Llama family, whose configuration class in transformers
/// (5.12) refuses a <c>num_attention_heads</c> that does not divide <c>hidden_size</c> even when <c>head_dim</c> is
/// given, the key/value groups are then raised to the next count whose query heads divide <c>hidden_size</c>.</para>
/// <para>transformers' OPT derives the head width as <c>hidden_size / num_attention_heads</c> and reads neither
/// <c>head_dim</c> nor <c>per_layer_config</c>, so its compatible shape has all <c>hidden_size / head_dim</c> heads
/// (removed heads come back as zeros: attention saves nothing) and the largest <c>ffn_dim</c> of any layer.</para>
/// </remarks>
public static class CheckpointLayouts
{
    /// <summary>The command-line names: <c>auto</c>, <c>per-layer</c>, <c>compatible</c>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["auto", "per-layer", "compatible"];

    /// <summary>The command-line name of a layout.</summary>
    /// <param name="layout">The layout.</param>
    /// <returns><c>auto</c>, <c>per-layer</c> or <c>compatible</c>.</returns>
    public static string Name(CheckpointLayout layout) => layout switch
    {
        CheckpointLayout.Auto => "auto",
        CheckpointLayout.PerLayer => "per-layer",
        CheckpointLayout.Compatible => "compatible",
        _ => throw new ArgumentOutOfRangeException(nameof(layout), layout, "Unknown checkpoint layout."),
    };

    /// <summary>Parses a command-line name (<see cref="Names"/>).</summary>
    /// <param name="name">The name.</param>
    /// <param name="layout">The layout.</param>
    /// <returns>Whether the name is known.</returns>
    public static bool TryParse(string? name, out CheckpointLayout layout)
    {
        switch (name)
        {
            case "auto": layout = CheckpointLayout.Auto; return true;
            case "per-layer": layout = CheckpointLayout.PerLayer; return true;
            case "compatible": layout = CheckpointLayout.Compatible; return true;
            default: layout = CheckpointLayout.Auto; return false;
        }
    }

    /// <summary>Why a configuration has no compatible form, or null when it has one.</summary>
    /// <param name="config">The configuration (<see cref="LlamaConfig"/> or <see cref="OptConfig"/>).</param>
    /// <returns>The reason, or null.</returns>
    public static string? CompatibleObstacle(IModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        switch (config)
        {
            case LlamaConfig llama:
                var ratios = Enumerable.Range(0, llama.NumHiddenLayers).Select(l => llama.ShapeOf(l)).Select(s => s.NumAttentionHeads / s.NumKeyValueHeads).Distinct().Order().ToArray();
                if (ratios.Length > 1)
                    return $"its layers share their key/value heads among different numbers of query heads ({string.Join(", ", ratios)}), and one num_attention_heads / num_key_value_heads pair applies to every layer";
                return llama.Family == DecoderFamily.Llama && llama.HiddenSize % ratios[0] != 0
                    ? $"no multiple of its {ratios[0]} query heads per key/value head divides hidden_size ({llama.HiddenSize}), which transformers' LlamaConfig requires of num_attention_heads"
                    : null;
            case OptConfig opt:
                return opt.HiddenSize % opt.HeadDim == 0
                    ? null
                    : $"its head width ({opt.HeadDim}) does not divide hidden_size ({opt.HiddenSize}), and transformers' OPT derives the head width as hidden_size / num_attention_heads";
            default:
                return $"the architecture {config.Architecture} has no compatible layout";
        }
    }

    /// <summary>The layout a request resolves to for a configuration: <see cref="CheckpointLayout.PerLayer"/> or <see cref="CheckpointLayout.Compatible"/>.</summary>
    /// <param name="config">The model's configuration.</param>
    /// <param name="layout">The requested layout.</param>
    /// <returns><see cref="CheckpointLayout.Auto"/> resolved (see <see cref="CheckpointLayout.Auto"/>), or the request.</returns>
    /// <exception cref="NotSupportedException"><see cref="CheckpointLayout.Compatible"/> was asked for and the configuration has no compatible form (the message says why).</exception>
    public static CheckpointLayout Resolve(IModelConfig config, CheckpointLayout layout)
    {
        ArgumentNullException.ThrowIfNull(config);
        var obstacle = CompatibleObstacle(config);
        return layout switch
        {
            CheckpointLayout.Auto => obstacle is null ? CheckpointLayout.Compatible : CheckpointLayout.PerLayer,
            CheckpointLayout.PerLayer => CheckpointLayout.PerLayer,
            CheckpointLayout.Compatible when obstacle is null => CheckpointLayout.Compatible,
            CheckpointLayout.Compatible => throw new NotSupportedException($"This {config.Architecture} cannot be written in the compatible layout: {obstacle}. Write it in the per-layer layout."),
            _ => throw new ArgumentOutOfRangeException(nameof(layout), layout, "Unknown checkpoint layout."),
        };
    }

    /// <summary>
    /// The configuration of the compatible form: every layer with one shape (see <see cref="CheckpointLayouts"/>),
    /// no <c>per_layer_config</c>; equal to <paramref name="config"/> when nothing needs padding.
    /// </summary>
    /// <param name="config">The model's configuration.</param>
    /// <returns>The configuration to save with the padded weights.</returns>
    /// <exception cref="NotSupportedException">There is no compatible form (see <see cref="CompatibleObstacle"/>).</exception>
    public static IModelConfig CompatibleConfig(IModelConfig config)
    {
        Resolve(config, CheckpointLayout.Compatible);
        switch (config)
        {
            case LlamaConfig llama:
            {
                var shapes = Enumerable.Range(0, llama.NumHiddenLayers).Select(llama.ShapeOf).ToArray();
                int kv = shapes.Max(s => s.NumKeyValueHeads);
                int group = shapes[0].NumAttentionHeads / shapes[0].NumKeyValueHeads;
                while (llama.Family == DecoderFamily.Llama && llama.HiddenSize % (group * kv) != 0)
                    kv++;
                var target = new LayerShape(group * kv, kv, shapes.Max(s => s.IntermediateSize));
                return shapes.All(s => s == target) && !llama.IsHeterogeneous ? llama : llama.WithLayerShapes(Enumerable.Repeat(target, shapes.Length).ToArray());
            }
            case OptConfig opt:
            {
                var shapes = Enumerable.Range(0, opt.NumHiddenLayers).Select(opt.ShapeOf).ToArray();
                var target = new OptLayerShape(opt.HiddenSize / opt.HeadDim, shapes.Max(s => s.FfnDim));
                return shapes.All(s => s == target) && !opt.IsHeterogeneous ? opt : opt.WithLayerShapes(Enumerable.Repeat(target, shapes.Length).ToArray());
            }
            default:
                throw new NotSupportedException($"The architecture {config.Architecture} has no compatible layout.");
        }
    }
}
