using System.Globalization;
using System.Text.RegularExpressions;

namespace Pip.Checkpoints;

/// <summary>Which rows and which columns of a tensor to keep (for a 1-D tensor, <see cref="Rows"/> are its entries).</summary>
/// <param name="Rows">Indices along the first dimension to keep, in the order to write them; null keeps all.</param>
/// <param name="Columns">Indices along the second dimension (of a 2-D tensor) to keep, in order; null keeps all.</param>
public sealed record TensorSlice(IReadOnlyList<int>? Rows = null, IReadOnlyList<int>? Columns = null);

/// <summary>One tensor of a streamed copy: where it comes from, its name in the new checkpoint, and what of it to keep.</summary>
/// <param name="SourceName">The tensor's name in the source checkpoint.</param>
/// <param name="TargetName">Its name in the new checkpoint.</param>
/// <param name="Slice">The rows/columns to keep; null copies it whole.</param>
public sealed record StreamedTensor(string SourceName, string TargetName, TensorSlice? Slice = null);

/// <summary>What a pruned copy of a checkpoint holds (<see cref="StreamedCheckpointWriter.PlanPruned"/>).</summary>
/// <param name="Config">The configuration of the new checkpoint (layer count and per-layer widths; the source's element type).</param>
/// <param name="Tensors">Its tensors, in the order to write them.</param>
public sealed record StreamedPrunePlan(IModelConfig Config, IReadOnlyList<StreamedTensor> Tensors);

/// <summary>
/// The width that one decoder layer keeps: which key/value groups (Llama layout: a key/value head with its group of
/// query heads; OPT: single heads) and which MLP channels. Indices refer to the layer as it is in the source
/// checkpoint; null keeps all.
/// </summary>
/// <param name="HeadGroups">The key/value groups (Llama) or heads (OPT) to keep, ascending; null keeps all.</param>
/// <param name="Channels">The MLP intermediate channels to keep, ascending; null keeps all.</param>
public sealed record LayerWidthKeep(IReadOnlyList<int>? HeadGroups = null, IReadOnlyList<int>? Channels = null);

/// <summary>
/// Writes a pruned copy of a checkpoint tensor by tensor, straight from the source files into the new folder: whole
/// tensors are copied in pieces, sliced tensors row by row, so memory stays at one piece (<see cref="BufferBytes"/>)
/// whatever the model's size. The new folder is written as <see cref="CheckpointWriter.Save"/> writes one: in a
/// temporary sibling folder moved into place at the end, sharded above the size limit, so a failure or a
/// cancellation leaves nothing behind and the destination as it was.
/// </summary>
/// <remarks>
/// <para>Use <see cref="SavePruned"/> for depth and width pruning of Llama-layout and OPT checkpoints (the
/// configuration follows: <c>num_hidden_layers</c>, and per-layer widths as <c>per_layer_config</c>, the way the
/// in-memory saver writes them); <see cref="Save"/> is the general form, any list of (sliced) source tensors under any
/// configuration.</para>
/// <para>Byte order and element type are kept: a slice copies raw elements, so the new checkpoint stores exactly the
/// source's values.</para>
/// </remarks>
public static partial class StreamedCheckpointWriter
{
    /// <summary>The largest piece read from a source file at once: 16 MiB.</summary>
    public const int BufferBytes = 16 << 20;

    /// <summary>
    /// Writes a new checkpoint folder from tensors of <paramref name="source"/>, each copied or sliced while the
    /// writer reaches it.
    /// </summary>
    /// <param name="source">The open source checkpoint.</param>
    /// <param name="destinationFolder">The folder to create (see <see cref="CheckpointWriter.Save"/> for the rules).</param>
    /// <param name="config">The configuration of the new checkpoint.</param>
    /// <param name="tensors">The tensors, in the order to distribute them over shards.</param>
    /// <param name="options">Options (overwrite, shard size, extra files); null for the defaults.</param>
    /// <param name="cancellationToken">Cancels the write; nothing is left behind.</param>
    /// <exception cref="KeyNotFoundException">A source tensor does not exist.</exception>
    /// <exception cref="ArgumentException">A slice does not fit its tensor (an index out of range, columns of a 1-D tensor).</exception>
    public static void Save(CheckpointFolder source, string destinationFolder, IModelConfig config, IEnumerable<StreamedTensor> tensors,
        CheckpointSaveOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(tensors);
        var sources = tensors.Select(t => ToSource(source, t ?? throw new ArgumentException("A tensor is null.", nameof(tensors)))).ToList();
        CheckpointWriter.Save(destinationFolder, config, sources, options, cancellationToken);
    }

    /// <summary>
    /// Writes <paramref name="source"/> minus whole decoder layers and/or with narrower layers, tensor by tensor. Layers
    /// are renumbered; the configuration (read from the source) follows: <c>num_hidden_layers</c> and, when widths
    /// differ between layers, <c>per_layer_config</c>. The source's companion files (tokenizer, generation config; see
    /// <see cref="CheckpointFolder.CompanionFileNames"/>) are copied along with <see cref="CheckpointSaveOptions.ExtraFiles"/>.
    /// </summary>
    /// <param name="source">The open source checkpoint (Llama layout or OPT).</param>
    /// <param name="destinationFolder">The folder to create.</param>
    /// <param name="removedLayers">Indices (in the source) of the layers to drop; may be empty.</param>
    /// <param name="widths">Per source layer index, what it keeps; layers not listed keep their width. May be null.</param>
    /// <param name="options">Options; null for the defaults.</param>
    /// <param name="cancellationToken">Cancels the write; nothing is left behind.</param>
    /// <returns>The configuration written.</returns>
    /// <exception cref="ArgumentException">A layer index is out of range, all layers would go, or a kept unit is out
    /// of range, repeated, unsorted or empty.</exception>
    /// <exception cref="CheckpointFormatException">The source configuration is malformed.</exception>
    public static IModelConfig SavePruned(CheckpointFolder source, string destinationFolder, IReadOnlyCollection<int> removedLayers,
        IReadOnlyDictionary<int, LayerWidthKeep>? widths = null, CheckpointSaveOptions? options = null, CancellationToken cancellationToken = default)
    {
        var plan = PlanPruned(source, removedLayers, widths);
        Save(source, destinationFolder, plan.Config, plan.Tensors, WithCompanionFiles(source, options), cancellationToken);
        return plan.Config;
    }

    /// <summary>
    /// Decides what <see cref="SavePruned"/> writes, without writing: the new configuration and, for every tensor of
    /// the new checkpoint, its source tensor, its new name (layers renumbered) and its slice. A backend that converts
    /// tensors as it writes them (another element type) writes this plan itself, so that one implementation decides
    /// which tensors go where.
    /// </summary>
    /// <param name="source">The open source checkpoint (Llama layout or OPT).</param>
    /// <param name="removedLayers">Indices (in the source) of the layers to drop; may be empty.</param>
    /// <param name="widths">Per source layer index, what it keeps; layers not listed keep their width. May be null.</param>
    /// <returns>The plan; its tensors are ordered by layer (embeddings first, head last).</returns>
    /// <exception cref="ArgumentException">A layer index is out of range, all layers would go, or a kept unit is out
    /// of range, repeated, unsorted or empty.</exception>
    /// <exception cref="CheckpointFormatException">The source configuration is malformed.</exception>
    public static StreamedPrunePlan PlanPruned(CheckpointFolder source, IReadOnlyCollection<int> removedLayers, IReadOnlyDictionary<int, LayerWidthKeep>? widths = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(removedLayers);
        widths ??= new Dictionary<int, LayerWidthKeep>();
        var config = source.LoadModelConfig();
        var layerCount = config.NumHiddenLayers;
        var removed = removedLayers.ToHashSet();
        var bad = removed.Concat(widths.Keys).Where(l => l < 0 || l >= layerCount).Distinct().Order().ToArray();
        if (bad.Length > 0)
            throw new ArgumentException($"Layers {string.Join(", ", bad)} do not exist: the checkpoint '{source.FolderPath}' has {layerCount} layers.", nameof(removedLayers));
        var kept = Enumerable.Range(0, layerCount).Where(l => !removed.Contains(l)).ToArray();
        if (kept.Length == 0)
            throw new ArgumentException($"All {layerCount} layers would be removed.", nameof(removedLayers));
        var newIndex = kept.Select((old, i) => (old, i)).ToDictionary(p => p.old, p => p.i);

        var (newConfig, slices) = config switch
        {
            LlamaConfig llama => LlamaPlan(llama, kept, widths),
            OptConfig opt => OptPlan(opt, kept, widths),
            _ => throw new NotSupportedException($"Streamed pruning does not support {config.Architecture} checkpoints."),
        };

        var tensors = new List<StreamedTensor>();
        foreach (var name in source.TensorNames)
        {
            var match = LayerName().Match(name);
            if (!match.Success)
            {
                tensors.Add(new StreamedTensor(name, name));
                continue;
            }
            var layer = int.Parse(match.Groups[2].ValueSpan, CultureInfo.InvariantCulture);
            if (!newIndex.TryGetValue(layer, out var index))
                continue;
            var rest = match.Groups[3].Value;
            var target = string.Create(CultureInfo.InvariantCulture, $"{match.Groups[1].Value}{index}.{rest}");
            tensors.Add(new StreamedTensor(name, target, slices(layer, rest)));
        }
        // Order as the model registers them: by layer, so that shards hold consecutive layers.
        tensors = tensors.OrderBy(t => LayerOrder(t.TargetName)).ThenBy(t => t.TargetName, StringComparer.Ordinal).ToList();
        return new StreamedPrunePlan(newConfig, tensors);
    }

    /// <summary>
    /// <paramref name="options"/> with the source's companion files (tokenizer, generation config; see
    /// <see cref="CheckpointFolder.CompanionFileNames"/>) added to <see cref="CheckpointSaveOptions.ExtraFiles"/>, except
    /// those an extra file of the same name replaces.
    /// </summary>
    /// <param name="source">The source checkpoint.</param>
    /// <param name="options">Options; null for the defaults.</param>
    /// <returns>The options to save with.</returns>
    public static CheckpointSaveOptions WithCompanionFiles(CheckpointFolder source, CheckpointSaveOptions? options)
    {
        ArgumentNullException.ThrowIfNull(source);
        options ??= new CheckpointSaveOptions();
        var companions = CheckpointFolder.CompanionFileNames.Select(f => Path.Combine(source.FolderPath, f)).Where(File.Exists)
            .Where(f => !options.ExtraFiles.Any(e => string.Equals(Path.GetFileName(e), Path.GetFileName(f), StringComparison.OrdinalIgnoreCase)));
        return options with { ExtraFiles = [.. options.ExtraFiles, .. companions] };
    }

    private static long LayerOrder(string name)
    {
        var match = LayerName().Match(name);
        return match.Success ? int.Parse(match.Groups[2].ValueSpan, CultureInfo.InvariantCulture) : name.Contains("embed", StringComparison.Ordinal) ? -1 : int.MaxValue;
    }

    private static (IModelConfig Config, Func<int, string, TensorSlice?> Slices) LlamaPlan(LlamaConfig config, int[] kept, IReadOnlyDictionary<int, LayerWidthKeep> widths)
    {
        var shapes = new List<LayerShape>();
        var rows = new Dictionary<(int, string), TensorSlice>();
        foreach (var layer in kept)
        {
            var shape = config.ShapeOf(layer);
            if (!widths.TryGetValue(layer, out var keep) || keep is null)
            {
                shapes.Add(shape);
                continue;
            }
            var group = shape.NumAttentionHeads / shape.NumKeyValueHeads;
            var heads = shape.NumAttentionHeads;
            var kv = shape.NumKeyValueHeads;
            var ffn = shape.IntermediateSize;
            if (keep.HeadGroups is { } groups)
            {
                CheckUnits(groups, shape.NumKeyValueHeads, layer, "key/value groups");
                var q = Expand(groups, group * config.HeadDim);
                var k = Expand(groups, config.HeadDim);
                rows[(layer, "self_attn.q_proj")] = new TensorSlice(Rows: q);
                rows[(layer, "self_attn.k_proj")] = new TensorSlice(Rows: k);
                rows[(layer, "self_attn.v_proj")] = new TensorSlice(Rows: k);
                rows[(layer, "self_attn.o_proj")] = new TensorSlice(Columns: q);
                heads = groups.Count * group;
                kv = groups.Count;
            }
            if (keep.Channels is { } channels)
            {
                CheckUnits(channels, shape.IntermediateSize, layer, "MLP channels");
                rows[(layer, "mlp.gate_proj")] = new TensorSlice(Rows: channels);
                rows[(layer, "mlp.up_proj")] = new TensorSlice(Rows: channels);
                rows[(layer, "mlp.down_proj")] = new TensorSlice(Columns: channels);
                ffn = channels.Count;
            }
            shapes.Add(new LayerShape(heads, kv, ffn));
        }
        var newConfig = (config with { NumHiddenLayers = kept.Length, LayerShapes = null }).WithLayerShapes(shapes);
        return (newConfig, (layer, rest) => SliceFor(rows, layer, rest));
    }

    private static (IModelConfig Config, Func<int, string, TensorSlice?> Slices) OptPlan(OptConfig config, int[] kept, IReadOnlyDictionary<int, LayerWidthKeep> widths)
    {
        var shapes = new List<OptLayerShape>();
        var rows = new Dictionary<(int, string), TensorSlice>();
        foreach (var layer in kept)
        {
            var shape = config.ShapeOf(layer);
            if (!widths.TryGetValue(layer, out var keep) || keep is null)
            {
                shapes.Add(shape);
                continue;
            }
            var heads = shape.NumAttentionHeads;
            var ffn = shape.FfnDim;
            if (keep.HeadGroups is { } kept2)
            {
                CheckUnits(kept2, shape.NumAttentionHeads, layer, "heads");
                var r = Expand(kept2, config.HeadDim);
                rows[(layer, "self_attn.q_proj")] = new TensorSlice(Rows: r);
                rows[(layer, "self_attn.k_proj")] = new TensorSlice(Rows: r);
                rows[(layer, "self_attn.v_proj")] = new TensorSlice(Rows: r);
                rows[(layer, "self_attn.out_proj")] = new TensorSlice(Columns: r);
                heads = kept2.Count;
            }
            if (keep.Channels is { } channels)
            {
                CheckUnits(channels, shape.FfnDim, layer, "MLP channels");
                rows[(layer, "fc1")] = new TensorSlice(Rows: channels);
                rows[(layer, "fc2")] = new TensorSlice(Columns: channels);
                ffn = channels.Count;
            }
            shapes.Add(new OptLayerShape(heads, ffn));
        }
        var newConfig = (config with { NumHiddenLayers = kept.Length, LayerShapes = null }).WithLayerShapes(shapes);
        return (newConfig, (layer, rest) => SliceFor(rows, layer, rest));
    }

    /// <summary>The slice of a layer tensor: a weight takes its module's slice; a bias follows the rows only (a column
    /// slice leaves the output, and so the bias, whole).</summary>
    private static TensorSlice? SliceFor(Dictionary<(int, string), TensorSlice> slices, int layer, string rest)
    {
        var dot = rest.LastIndexOf('.');
        if (dot < 0 || !slices.TryGetValue((layer, rest[..dot]), out var slice))
            return null;
        return rest[(dot + 1)..] switch
        {
            "weight" => slice,
            "bias" => slice.Rows is null ? null : new TensorSlice(Rows: slice.Rows),
            _ => null,
        };
    }

    private static void CheckUnits(IReadOnlyList<int> units, int count, int layer, string what)
    {
        if (units.Count == 0)
            throw new ArgumentException($"Layer {layer} would keep no {what}; remove the layer instead.");
        for (var i = 0; i < units.Count; i++)
        {
            if (units[i] < 0 || units[i] >= count)
                throw new ArgumentException($"Layer {layer} has {count} {what}; {units[i]} is out of range.");
            if (i > 0 && units[i] <= units[i - 1])
                throw new ArgumentException($"The {what} kept in layer {layer} must be ascending without repeats; {units[i]} follows {units[i - 1]}.");
        }
    }

    private static int[] Expand(IReadOnlyList<int> units, int width) =>
        units.SelectMany(u => Enumerable.Range(u * width, width)).ToArray();

    private static SafeTensorSource ToSource(CheckpointFolder folder, StreamedTensor tensor)
    {
        var file = folder.GetFile(tensor.SourceName);
        var info = file.GetInfo(tensor.SourceName);
        var shape = info.Shape;
        var slice = tensor.Slice;
        if (slice is null || (slice.Rows is null && slice.Columns is null))
            return new SafeTensorSource(tensor.TargetName, info.DType, shape, (stream, ct) => CopyWhole(file, info, stream, ct));

        if (shape.Length == 0 || (slice.Columns is not null && shape.Length != 2))
            throw new ArgumentException($"Tensor '{info.Name}' of shape [{string.Join(", ", shape)}] cannot be sliced by {(slice.Columns is null ? "rows" : "columns")}.", nameof(tensor));
        var rowCount = shape[0];
        var rowElements = shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        var rows = slice.Rows ?? Enumerable.Range(0, checked((int)rowCount)).ToArray();
        CheckIndices(rows, rowCount, info.Name, "row");
        if (slice.Columns is not null)
            CheckIndices(slice.Columns, shape[1], info.Name, "column");
        var newShape = (long[])shape.Clone();
        newShape[0] = rows.Count;
        if (slice.Columns is not null)
            newShape[1] = slice.Columns.Count;
        return new SafeTensorSource(tensor.TargetName, info.DType, newShape,
            (stream, ct) => CopySlice(file, info, rows, slice.Columns, rowElements, stream, ct));
    }

    private static void CheckIndices(IReadOnlyList<int> indices, long count, string tensor, string what)
    {
        foreach (var i in indices)
        {
            if (i < 0 || i >= count)
                throw new ArgumentException($"Tensor '{tensor}' has {count} {what}s; {what} {i} is out of range.");
        }
    }

    private static void CopyWhole(SafeTensorsFile file, SafeTensorInfo info, Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[(int)Math.Min(BufferBytes, Math.Max(1, info.ByteLength))];
        for (long offset = 0; offset < info.ByteLength;)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = (int)Math.Min(buffer.Length, info.ByteLength - offset);
            file.ReadBytes(info.Name, offset, buffer.AsSpan(0, n));
            stream.Write(buffer, 0, n);
            offset += n;
        }
    }

    private static void CopySlice(SafeTensorsFile file, SafeTensorInfo info, IReadOnlyList<int> rows, IReadOnlyList<int>? columns, long rowElements,
        Stream stream, CancellationToken cancellationToken)
    {
        var elementSize = info.DType.ElementSize();
        var rowBytes = rowElements * elementSize;
        if (rowBytes == 0 || rows.Count == 0)
            return;
        if (columns is null)
        {
            // Runs of consecutive rows are contiguous bytes: copy each run in pieces.
            var buffer = new byte[(int)Math.Min(BufferBytes, Math.Max(rowBytes, 1))];
            for (var i = 0; i < rows.Count;)
            {
                var j = i + 1;
                while (j < rows.Count && rows[j] == rows[j - 1] + 1) j++;
                var start = rows[i] * rowBytes;
                var length = (j - i) * rowBytes;
                for (long offset = 0; offset < length;)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var n = (int)Math.Min(buffer.Length, length - offset);
                    file.ReadBytes(info.Name, start + offset, buffer.AsSpan(0, n));
                    stream.Write(buffer, 0, n);
                    offset += n;
                }
                i = j;
            }
            return;
        }

        var row = new byte[checked((int)rowBytes)];
        var output = new byte[columns.Count * elementSize];
        foreach (var r in rows)
        {
            cancellationToken.ThrowIfCancellationRequested();
            file.ReadBytes(info.Name, r * rowBytes, row);
            for (var c = 0; c < columns.Count; c++)
                Buffer.BlockCopy(row, columns[c] * elementSize, output, c * elementSize, elementSize);
            stream.Write(output);
        }
    }

    [GeneratedRegex(@"^(.*\blayers\.)(\d+)\.(.+)$", RegexOptions.CultureInvariant)]
    private static partial Regex LayerName();
}
