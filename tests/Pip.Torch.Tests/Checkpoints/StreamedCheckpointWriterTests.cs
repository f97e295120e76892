using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Pruning.Width;
using Pip.Torch.Tests.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Checkpoints;

public sealed class StreamedCheckpointWriterTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "pip-streamed-tests", Guid.NewGuid().ToString("N"));

    public StreamedCheckpointWriterTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private string SaveSource(ICausalLMModule module, ScalarType dtype, string name = "source")
    {
        var folder = Path.Combine(_dir, name);
        using var model = new TorchCausalLM(module, null);
        model.Save(folder, dtype);
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), "{}");
        return folder;
    }

    private static Dictionary<string, byte[]> Weights(ICausalLMModule module) =>
        module.NamedWeights().ToDictionary(p => p.Key, p => p.Value.contiguous().bytes.ToArray());

    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float32)]
    public void SavePruned_LlamaLayersAndWidths_EqualsInMemoryPruningBitExact(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var config = TinyModels.Config(DecoderFamily.Qwen2, layers: 4, heads: 4, kvHeads: 2, attentionBias: true, mlpBias: true);
        var source = SaveSource(TinyModels.Random(config, seed: 5, dtype), dtype);
        var destination = Path.Combine(_dir, "pruned");
        var widths = new Dictionary<int, LayerWidthKeep>
        {
            [0] = new(HeadGroups: [1], Channels: [0, 2, 3, 7, 40, 47]),
            [3] = new(Channels: Enumerable.Range(10, 20).ToArray()),
        };

        using (var checkpoint = CheckpointFolder.Open(source))
            StreamedCheckpointWriter.SavePruned(checkpoint, destination, [1], widths);

        using var expected = TorchCausalLM.Load(source, dtype);
        expected.Module.Prune(new WidthPruningPlan
        {
            KeyValueGroups = new Dictionary<int, IReadOnlyCollection<int>> { [0] = [0] },
            Channels = new Dictionary<int, IReadOnlyCollection<int>>
            {
                [0] = Enumerable.Range(0, 48).Except([0, 2, 3, 7, 40, 47]).ToArray(),
                [3] = Enumerable.Range(0, 48).Except(Enumerable.Range(10, 20)).ToArray(),
            },
        });
        expected.RemoveLayers([1]);
        using var actual = TorchCausalLM.Load(destination, dtype);

        actual.Config.NumHiddenLayers.Should().Be(3);
        actual.Config.LayerShapes.Should().Equal(expected.Config.LayerShapes);
        Weights(actual.Model).Should().BeEquivalentTo(Weights(expected.Model));
        File.Exists(Path.Combine(destination, "tokenizer_config.json")).Should().BeTrue();
    }

    [Fact]
    public void SavePruned_OptHeadsAndChannels_EqualsInMemoryPruningBitExact()
    {
        using var scope = NewDisposeScope();
        var source = SaveSource(TinyOptModels.Random(TinyOptModels.Config(layers: 3), seed: 3), ScalarType.Float32);
        var destination = Path.Combine(_dir, "pruned");
        using var original = TorchCausalLM.Load(source);
        var opt = (OptForCausalLM)original.Model;
        var heads = opt.Config.NumAttentionHeads;
        var ffn = opt.Config.FfnDim;

        using (var checkpoint = CheckpointFolder.Open(source))
            StreamedCheckpointWriter.SavePruned(checkpoint, destination, [2], new Dictionary<int, LayerWidthKeep> { [1] = new([0, heads - 1], [1, 2, ffn - 1]) });

        opt.Prune(new WidthPruningPlan
        {
            KeyValueGroups = new Dictionary<int, IReadOnlyCollection<int>> { [1] = Enumerable.Range(1, heads - 2).ToArray() },
            Channels = new Dictionary<int, IReadOnlyCollection<int>> { [1] = Enumerable.Range(0, ffn).Except([1, 2, ffn - 1]).ToArray() },
        });
        original.RemoveLayers([2]);
        using var actual = TorchCausalLM.Load(destination);

        actual.LayerCount.Should().Be(2);
        Weights(actual.Model).Should().BeEquivalentTo(Weights(original.Model));
    }

    [Fact]
    public void SavePruned_ManyShards_SplitsAndRoundTrips()
    {
        using var scope = NewDisposeScope();
        var source = SaveSource(TinyModels.Random(TinyModels.Config(layers: 3), seed: 8), ScalarType.Float32);
        var destination = Path.Combine(_dir, "pruned");

        using (var checkpoint = CheckpointFolder.Open(source))
            StreamedCheckpointWriter.SavePruned(checkpoint, destination, [0], options: new CheckpointSaveOptions { MaxShardBytes = 20_000 });

        using var expected = TorchCausalLM.Load(source);
        expected.RemoveLayers([0]);
        using var actual = TorchCausalLM.Load(destination);
        Directory.GetFiles(destination, "model-*.safetensors").Length.Should().BeGreaterThan(1);
        Weights(actual.Model).Should().BeEquivalentTo(Weights(expected.Model));
    }

    [Fact]
    public void SavePruned_SourceTruncatedMidway_ThrowsAndLeavesNothingBehind()
    {
        using var scope = NewDisposeScope();
        var source = SaveSource(TinyModels.Random(TinyModels.Config(layers: 3), seed: 2), ScalarType.Float32);
        var destination = Path.Combine(_dir, "pruned");
        using var checkpoint = CheckpointFolder.Open(source);
        var weights = Path.Combine(source, CheckpointFolder.SingleFileName);
        using (var stream = new FileStream(weights, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
            stream.SetLength(stream.Length / 2); // the file shrinks under the open checkpoint: a failure halfway through the copy

        var act = () => StreamedCheckpointWriter.SavePruned(checkpoint, destination, [1]);

        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain(weights).And.Contain("truncated");
        Directory.Exists(destination).Should().BeFalse();
        Directory.GetFileSystemEntries(_dir).Should().Equal(source);
    }

    [Fact]
    public void SavePruned_CancelledBeforehand_LeavesExistingDestinationUntouched()
    {
        using var scope = NewDisposeScope();
        var source = SaveSource(TinyModels.Random(TinyModels.Config(layers: 3), seed: 2), ScalarType.Float32);
        var destination = Path.Combine(_dir, "pruned");
        Directory.CreateDirectory(destination);
        File.WriteAllText(Path.Combine(destination, "mine.txt"), "keep");
        using var checkpoint = CheckpointFolder.Open(source);
        using var cts = new CancellationTokenSource();
        cts.Cancel();

        var act = () => StreamedCheckpointWriter.SavePruned(checkpoint, destination, [1], options: new CheckpointSaveOptions { Overwrite = true }, cancellationToken: cts.Token);

        act.Should().Throw<OperationCanceledException>();
        Directory.GetFiles(destination).Select(Path.GetFileName).Should().Equal("mine.txt");
        Directory.GetFileSystemEntries(_dir).Should().BeEquivalentTo([source, destination]);
    }

    [Theory]
    [InlineData(new[] { 5 }, null, "do not exist")]
    [InlineData(new int[0], new[] { 2 }, "out of range")]
    [InlineData(new int[0], new int[0], "no key/value groups")]
    public void SavePruned_BadLayersOrUnits_ThrowsBeforeWritingAnything(int[] removed, int[]? groups, string message)
    {
        using var scope = NewDisposeScope();
        var source = SaveSource(TinyModels.Random(TinyModels.Config(layers: 3), seed: 2), ScalarType.Float32);
        var destination = Path.Combine(_dir, "pruned");
        using var checkpoint = CheckpointFolder.Open(source);
        var widths = groups is null ? null : new Dictionary<int, LayerWidthKeep> { [0] = new(HeadGroups: groups) };

        var act = () => StreamedCheckpointWriter.SavePruned(checkpoint, destination, removed, widths);

        act.Should().Throw<ArgumentException>().Which.Message.Should().Contain(message);
        Directory.Exists(destination).Should().BeFalse();
    }

    [Fact]
    public void Save_RowsAndColumnsOfOneTensor_CopiesExactlyThoseElements()
    {
        using var scope = NewDisposeScope();
        var source = Path.Combine(_dir, "raw");
        var matrix = arange(5 * 7, dtype: ScalarType.Int32).reshape(5, 7);
        Pip.Torch.Checkpoints.TorchSafeTensors.Save(source, TinyModels.Config(), new Dictionary<string, Tensor> { ["m"] = matrix });
        var destination = Path.Combine(_dir, "out");

        using (var checkpoint = CheckpointFolder.Open(source))
            StreamedCheckpointWriter.Save(checkpoint, destination, TinyModels.Config(), [new StreamedTensor("m", "n", new TensorSlice([4, 1, 2], [6, 0]))]);

        using var result = CheckpointFolder.Open(destination);
        var n = Pip.Torch.Checkpoints.TorchSafeTensors.LoadTensor(result, "n");
        n.shape.Should().Equal(3, 2);
        n.data<int>().ToArray().Should().Equal(34, 28, 13, 7, 20, 14);
    }

    [Fact]
    public void PlanPruned_RemovedLayers_RenumbersKeptLayersAndWritesNothing()
    {
        using var scope = NewDisposeScope();
        var config = TinyModels.Config(layers: 4);
        var source = SaveSource(TinyModels.Random(config, seed: 3, ScalarType.Float32), ScalarType.Float32);
        var before = Directory.GetFileSystemEntries(_dir).Length;

        using var checkpoint = CheckpointFolder.Open(source);
        var plan = StreamedCheckpointWriter.PlanPruned(checkpoint, [0, 2]);

        plan.Config.NumHiddenLayers.Should().Be(2);
        plan.Tensors.Should().OnlyContain(t => t.Slice == null);
        var renamed = plan.Tensors.Where(t => t.SourceName.StartsWith("model.layers.", StringComparison.Ordinal))
            .Select(t => (Source: t.SourceName.Split('.')[2], Target: t.TargetName.Split('.')[2])).Distinct().ToArray();
        renamed.Should().BeEquivalentTo([("1", "0"), ("3", "1")]);
        plan.Tensors.Count(t => !t.SourceName.StartsWith("model.layers.", StringComparison.Ordinal))
            .Should().Be(checkpoint.TensorNames.Count(n => !n.StartsWith("model.layers.", StringComparison.Ordinal)));
        plan.Tensors[0].TargetName.Should().Contain("embed");
        Directory.GetFileSystemEntries(_dir).Length.Should().Be(before);
    }
}
