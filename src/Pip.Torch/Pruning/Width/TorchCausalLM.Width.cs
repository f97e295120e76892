using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Pruning.Width;
using static TorchSharp.torch;

namespace Pip.Torch;

/// <summary>Width pruning of a <see cref="TorchCausalLM"/> (see <see cref="IWidthPrunableModel"/>).</summary>
public sealed partial class TorchCausalLM
{
    /// <inheritdoc />
    public int GetUnitCount(int layer, WidthUnitKind kind)
    {
        var l = Layer(layer);
        return kind == WidthUnitKind.Heads ? (int)l.SelfAttn.NumKeyValueHeads : (int)l.Mlp.IntermediateSize;
    }

    /// <inheritdoc />
    /// <remarks>
    /// A key/value group of G query heads of width d in hidden size h: (G + 2)·d·h for its q/k/v rows plus G·d·h for
    /// its o_proj columns, plus (G + 2)·d when q/k/v have biases. A channel: 3·h plus 2 when gate/up have biases.
    /// </remarks>
    public long GetUnitParameterCount(int layer, WidthUnitKind kind)
    {
        var l = Layer(layer);
        long hidden = Config.HiddenSize;
        if (kind == WidthUnitKind.Heads)
        {
            var a = l.SelfAttn;
            long qWidth = a.GroupSize * a.HeadDim, kvWidth = a.HeadDim;
            long rows = qWidth + 2 * kvWidth;
            return rows * hidden + qWidth * hidden + (a.QProj.bias is null ? 0 : rows);
        }

        return 3 * hidden + (l.Mlp.GateProj.bias is null ? 0 : 2);
    }

    /// <inheritdoc />
    public string? GetBiasCompensationObstacle(WidthUnitKind kind) => Config.Family == DecoderFamily.Llama
        ? null
        : $"transformers' {Architecture} has no configuration flag for a bias on {(kind == WidthUnitKind.Heads ? "o_proj" : "down_proj")}, so a compensated checkpoint would not load there (only the Llama family has attention_bias/mlp_bias).";

    /// <inheritdoc />
    /// <remarks>
    /// Bias compensation (FLAP): for each layer with input means, <c>W[:, removed] · mean[removed]</c> is added to the
    /// bias of o_proj (heads) or down_proj (channels). Llama has no such biases, so every layer's attention (or MLP)
    /// projections get biases (zero where nothing is compensated) and the configuration's <c>attention_bias</c> (or
    /// <c>mlp_bias</c>) is set: transformers' flags apply to all projections of all layers, so this is the only way
    /// for a standard Llama checkpoint to carry the compensation. It adds (q + k + v + o output widths) parameters per
    /// layer for heads and (2·intermediate + hidden) for channels. Means and weights are combined in float32.
    /// </remarks>
    public void RemoveUnits(WidthRemovalPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var layers = Module.Layers;
        var compensation = new List<(int Layer, bool Heads, Tensor Bias)>();
        try
        {
            using (no_grad())
            {
                foreach (var (layerMeans, units, heads) in new[] { (plan.HeadInputMeans, plan.Heads, true), (plan.ChannelInputMeans, plan.Channels, false) })
                {
                    if (layerMeans is null) continue;
                    if (GetBiasCompensationObstacle(heads ? WidthUnitKind.Heads : WidthUnitKind.Channels) is { } obstacle)
                        throw new NotSupportedException(obstacle);
                    foreach (var (layer, removed) in units)
                    {
                        if (removed.Count == 0) continue;
                        var l = Layer(layer);
                        var projection = heads ? l.SelfAttn.OProj : l.Mlp.DownProj;
                        long inputs = projection.weight!.shape[1];
                        if (!layerMeans.TryGetValue(layer, out var mean) || mean is null || mean.Count != inputs)
                            throw new ArgumentException($"Layer {layer}: bias compensation needs the mean of all {inputs} inputs of {(heads ? "o_proj" : "down_proj")}; got {(mean is null ? "none" : mean.Count.ToString(System.Globalization.CultureInfo.InvariantCulture))}.", nameof(plan));
                        long width = heads ? l.SelfAttn.GroupSize * l.SelfAttn.HeadDim : 1;
                        int unitCount = GetUnitCount(layer, heads ? WidthUnitKind.Heads : WidthUnitKind.Channels);
                        var columns = removed.Where(u => u >= 0 && u < unitCount).Distinct().SelectMany(u => Enumerable.Range(0, (int)width).Select(d => u * width + d)).ToArray();
                        using var scope = NewDisposeScope();
                        using var index = tensor(columns, device: projection.weight.device);
                        var m = tensor(columns.Select(c => (float)mean[(int)c]).ToArray(), device: projection.weight.device);
                        var w = projection.weight.detach().index_select(1, index).to_type(ScalarType.Float32);
                        compensation.Add((layer, heads, w.matmul(m).MoveToOuterDisposeScope()));
                    }
                }
            }

            // Checks every index (and throws) before anything changes.
            Module.Prune(new WidthPruningPlan { KeyValueGroups = plan.Heads, Channels = plan.Channels });
            Module.EnableProjectionBiases(plan.HeadInputMeans is not null, plan.ChannelInputMeans is not null);
            using (no_grad())
            {
                foreach (var (layer, heads, bias) in compensation)
                {
                    if (heads) layers[layer].SelfAttn.EnsureBiases(bias);
                    else layers[layer].Mlp.EnsureBiases(bias);
                }
            }
        }
        finally
        {
            foreach (var c in compensation) c.Bias.Dispose();
        }
    }

    private LlamaDecoderLayer Layer(int layer) =>
        layer >= 0 && layer < Module.Layers.Count
            ? Module.Layers[layer]
            : throw new ArgumentOutOfRangeException(nameof(layer), layer, $"The model has {Module.Layers.Count} layers.");
}
