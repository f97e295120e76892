using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Pruning.Width;
using static TorchSharp.torch;

namespace Pip.Torch;

/// <summary>Width pruning of a <see cref="TorchCausalLM"/> (see <see cref="IWidthPrunableModel"/>).</summary>
public sealed partial class TorchCausalLM
{
    /// <inheritdoc />
    /// <remarks>Heads are key/value groups in Llama-family models and single heads in OPT (which has no GQA).</remarks>
    public int GetUnitCount(int layer, WidthUnitKind kind) => WidthUnitParts.Count(Layer(layer), kind);

    /// <inheritdoc />
    /// <remarks>
    /// A key/value group of G query heads of width d in hidden size h: (G + 2)·d·h for its q/k/v rows plus G·d·h for
    /// its o_proj columns, plus (G + 2)·d when q/k/v have biases. A channel: 3·h plus 2 when gate/up have biases. OPT:
    /// a head 4·d·h plus 3·d with biases (<c>enable_bias</c>); a channel 2·h plus 1 (the fc1 bias entry) with biases.
    /// The biases of o_proj/out_proj and down_proj/fc2 are kept whole and not counted.
    /// </remarks>
    public long GetUnitParameterCount(int layer, WidthUnitKind kind) => WidthUnitParts.ParameterCount(Layer(layer), kind);

    /// <inheritdoc />
    public string? GetBiasCompensationObstacle(WidthUnitKind kind)
    {
        string projection = (Model, kind) switch
        {
            (OptForCausalLM, WidthUnitKind.Heads) => "out_proj",
            (OptForCausalLM, _) => "fc2",
            (_, WidthUnitKind.Heads) => "o_proj",
            _ => "down_proj",
        };
        return Model switch
        {
            OptForCausalLM opt => opt.Config.EnableBias
                ? null
                : $"This {Architecture} has enable_bias false, so {projection} has no bias to carry the compensation (transformers' OPT sets all its biases with that one flag).",
            LlamaForCausalLM llama when llama.Config.Family == DecoderFamily.Llama => null,
            _ => $"transformers' {Architecture} has no configuration flag for a bias on {projection}, so a compensated checkpoint would not load there (only the Llama family has attention_bias/mlp_bias).",
        };
    }

    /// <inheritdoc />
    /// <remarks>
    /// Bias compensation (FLAP): for each layer with input means, <c>W[:, removed] · mean[removed]</c> is added to the
    /// bias of o_proj (heads) or down_proj (channels); OPT: out_proj or fc2. OPT with <c>enable_bias</c> already has
    /// those biases, so the compensation adds to them and the parameter count does not change. Llama has no such
    /// biases, so every layer's attention (or MLP) projections get biases (zero where nothing is compensated) and the
    /// configuration's <c>attention_bias</c> (or <c>mlp_bias</c>) is set: transformers' flags apply to all projections
    /// of all layers, so this is the only way for a standard Llama checkpoint to carry the compensation. It adds (q +
    /// k + v + o output widths) parameters per layer for heads and (2·intermediate + hidden) for channels. Means and
    /// weights are combined in float32.
    /// </remarks>
    public void RemoveUnits(WidthRemovalPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var compensation = new List<(int Layer, WidthUnitKind Kind, Tensor Bias)>();
        try
        {
            using (no_grad())
            {
                foreach (var (layerMeans, units, kind) in new[] { (plan.HeadInputMeans, plan.Heads, WidthUnitKind.Heads), (plan.ChannelInputMeans, plan.Channels, WidthUnitKind.Channels) })
                {
                    if (layerMeans is null) continue;
                    if (GetBiasCompensationObstacle(kind) is { } obstacle)
                        throw new NotSupportedException(obstacle);
                    foreach (var (layer, removed) in units)
                    {
                        if (removed.Count == 0) continue;
                        var output = WidthUnitParts.Output(Layer(layer), kind);
                        var projection = output.Linear;
                        long inputs = projection.weight!.shape[1];
                        if (!layerMeans.TryGetValue(layer, out var mean) || mean is null || mean.Count != inputs)
                            throw new ArgumentException($"Layer {layer}: bias compensation needs the mean of all {inputs} inputs of {output.Name}; got {(mean is null ? "none" : mean.Count.ToString(System.Globalization.CultureInfo.InvariantCulture))}.", nameof(plan));
                        int unitCount = GetUnitCount(layer, kind);
                        long width = inputs / unitCount;
                        var columns = removed.Where(u => u >= 0 && u < unitCount).Distinct().SelectMany(u => Enumerable.Range(0, (int)width).Select(d => u * width + d)).ToArray();
                        using var scope = NewDisposeScope();
                        using var index = tensor(columns, device: projection.weight.device);
                        var m = tensor(columns.Select(c => (float)mean[(int)c]).ToArray(), device: projection.weight.device);
                        var w = projection.weight.detach().index_select(1, index).to_type(ScalarType.Float32);
                        compensation.Add((layer, kind, w.matmul(m).MoveToOuterDisposeScope()));
                    }
                }
            }

            // Checks every index (and throws) before anything changes.
            var pruningPlan = new WidthPruningPlan { KeyValueGroups = plan.Heads, Channels = plan.Channels };
            switch (Model)
            {
                case LlamaForCausalLM llama:
                    llama.Prune(pruningPlan);
                    llama.EnableProjectionBiases(plan.HeadInputMeans is not null, plan.ChannelInputMeans is not null);
                    using (no_grad())
                    {
                        foreach (var (layer, kind, bias) in compensation)
                        {
                            if (kind == WidthUnitKind.Heads) llama.Layers[layer].SelfAttn.EnsureBiases(bias);
                            else llama.Layers[layer].Mlp.EnsureBiases(bias);
                        }
                    }

                    break;
                case OptForCausalLM opt:
                    opt.Prune(pruningPlan);
                    using (no_grad())
                    {
                        foreach (var (layer, kind, bias) in compensation)
                        {
                            var target = WidthUnitParts.Output(opt.Layers[layer], kind).Linear.bias!;
                            target.add_(bias.to_type(target.dtype));
                        }
                    }

                    break;
                default:
                    throw new NotSupportedException($"Width pruning supports Llama-family and OPT models; this model is {Architecture}.");
            }
        }
        finally
        {
            foreach (var c in compensation) c.Bias.Dispose();
        }
    }

    private TorchSharp.torch.nn.Module Layer(int layer) =>
        layer >= 0 && layer < Model.Layers.Count
            ? Model.Layers[layer]
            : throw new ArgumentOutOfRangeException(nameof(layer), layer, $"The model has {Model.Layers.Count} layers.");
}
