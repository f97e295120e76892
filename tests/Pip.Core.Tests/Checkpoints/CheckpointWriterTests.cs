using Pip.Checkpoints;
using static Pip.Core.Tests.Checkpoints.SafeTensorsFixtures;

namespace Pip.Core.Tests.Checkpoints;

public sealed class CheckpointWriterTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private static LlamaConfig Config(int layers = 2) => new()
    {
        Family = DecoderFamily.Llama,
        VocabSize = 16,
        HiddenSize = 8,
        IntermediateSize = 12,
        NumHiddenLayers = layers,
        NumAttentionHeads = 2,
        NumKeyValueHeads = 1,
        HeadDim = 4,
    };

    private static List<(SafeTensorSource Source, byte[] Bytes)> Weights(int count)
    {
        var list = new List<(SafeTensorSource, byte[])>();
        for (var i = 0; i < count; i++)
        {
            var bytes = RandomBytes(32, 100 + i);
            list.Add((SafeTensorSource.FromBytes($"model.layers.{i}.w", SafeTensorDType.BF16, [4, 4], bytes), bytes));
        }
        return list;
    }

    private string ExistingCheckpoint(string name)
    {
        var path = _dir.Sub(name);
        File.WriteAllText(Path.Combine(path, "marker.txt"), "old");
        return path;
    }

    /// <summary>Everything in the parent folder except the destination itself.</summary>
    private string[] Siblings(string destination) =>
        Directory.EnumerateFileSystemEntries(_dir.Path).Where(p => p != destination && !p.EndsWith("tokenizer.json", StringComparison.Ordinal)).ToArray();

    [Fact]
    public void Save_NewFolder_WritesConfigShardsAndExtraFiles()
    {
        var tokenizer = _dir.File("tokenizer.json");
        File.WriteAllText(tokenizer, """{"model":{}}""");
        var destination = _dir.File("out");
        var weights = Weights(3);

        CheckpointWriter.Save(destination, Config(), weights.Select(w => w.Source),
            new CheckpointSaveOptions { MaxShardBytes = 40, ExtraFiles = [tokenizer] });

        File.ReadAllText(Path.Combine(destination, "tokenizer.json")).Should().Be("""{"model":{}}""");
        using var folder = CheckpointFolder.Open(destination);
        folder.ShardFiles.Should().HaveCount(3);
        folder.LoadConfig().NumHiddenLayers.Should().Be(2);
        foreach (var (source, bytes) in weights)
            folder.GetFile(source.Name).GetBytes(source.Name).ToArray().Should().Equal(bytes);
        Siblings(destination).Should().BeEmpty();
    }

    [Fact]
    public void Save_ExistingNonEmptyFolderWithoutOverwrite_RefusesAndKeepsIt()
    {
        var destination = ExistingCheckpoint("out");

        var act = () => CheckpointWriter.Save(destination, Config(), Weights(1).Select(w => w.Source));

        act.Should().Throw<IOException>().Which.Message.Should().Contain(destination).And.Contain("not empty");
        File.ReadAllText(Path.Combine(destination, "marker.txt")).Should().Be("old");
        Siblings(destination).Should().BeEmpty();
    }

    [Fact]
    public void Save_ExistingEmptyFolder_IsFilled()
    {
        var destination = _dir.Sub("out");

        CheckpointWriter.Save(destination, Config(), Weights(1).Select(w => w.Source));

        File.Exists(Path.Combine(destination, "model.safetensors")).Should().BeTrue();
    }

    [Fact]
    public void Save_Overwrite_ReplacesTheWholeFolder()
    {
        var destination = ExistingCheckpoint("out");

        CheckpointWriter.Save(destination, Config(), Weights(1).Select(w => w.Source), new CheckpointSaveOptions { Overwrite = true });

        Directory.GetFiles(destination).Select(Path.GetFileName).Should().BeEquivalentTo(["config.json", "model.safetensors"]);
        Siblings(destination).Should().BeEmpty();
    }

    [Fact]
    public void Save_SourceThrowsMidway_LeavesDestinationUntouchedAndRemovesTemp()
    {
        var destination = ExistingCheckpoint("out");
        var weights = Weights(2).Select(w => w.Source).ToList();
        weights.Add(new SafeTensorSource("model.boom", SafeTensorDType.F32, [2], (s, _) =>
        {
            s.Write(new byte[4]);
            throw new InvalidOperationException("disk on fire");
        }));

        var act = () => CheckpointWriter.Save(destination, Config(), weights,
            new CheckpointSaveOptions { Overwrite = true, MaxShardBytes = 32 });

        act.Should().Throw<InvalidOperationException>().WithMessage("disk on fire");
        Directory.GetFileSystemEntries(destination).Select(Path.GetFileName).Should().Equal("marker.txt");
        Siblings(destination).Should().BeEmpty();
    }

    [Fact]
    public void Save_CancelledMidway_LeavesDestinationAbsentAndRemovesTemp()
    {
        var destination = _dir.File("out");
        using var cts = new CancellationTokenSource();
        var weights = Weights(1).Select(w => w.Source).ToList();
        weights.Add(new SafeTensorSource("model.cancel", SafeTensorDType.U8, [1], (s, _) => { s.WriteByte(1); cts.Cancel(); }));
        weights.AddRange(Weights(3).Skip(1).Select(w => w.Source));

        var act = () => CheckpointWriter.Save(destination, Config(), weights, new CheckpointSaveOptions { MaxShardBytes = 16 }, cts.Token);

        act.Should().Throw<OperationCanceledException>();
        Directory.Exists(destination).Should().BeFalse();
        Siblings(destination).Should().BeEmpty();
    }

    [Fact]
    public void Save_MissingExtraFile_ThrowsBeforeWriting()
    {
        var destination = _dir.File("out");

        var act = () => CheckpointWriter.Save(destination, Config(), Weights(1).Select(w => w.Source),
            new CheckpointSaveOptions { ExtraFiles = [_dir.File("missing.json")] });

        act.Should().Throw<FileNotFoundException>().Which.Message.Should().Contain("missing.json");
        Directory.GetFileSystemEntries(_dir.Path).Should().BeEmpty();
    }

    [Fact]
    public void Save_ExtraFileNamedLikeCheckpointFile_Throws()
    {
        var other = _dir.Sub("src");
        var config = Path.Combine(other, "config.json");
        File.WriteAllText(config, "{}");

        var act = () => CheckpointWriter.Save(_dir.File("out"), Config(), Weights(1).Select(w => w.Source),
            new CheckpointSaveOptions { ExtraFiles = [config] });

        act.Should().Throw<ArgumentException>().Which.Message.Should().Contain("config.json");
        Directory.Exists(_dir.File("out")).Should().BeFalse();
    }

    [Fact]
    public void Save_InconsistentConfig_ThrowsBeforeWriting()
    {
        var bad = Config() with { NumKeyValueHeads = 3 };

        var act = () => CheckpointWriter.Save(_dir.File("out"), bad, Weights(1).Select(w => w.Source));

        act.Should().Throw<ArgumentException>().Which.Message.Should().Contain("num_key_value_heads");
        Directory.GetFileSystemEntries(_dir.Path).Should().BeEmpty();
    }
}
