using Pip.Checkpoints;

namespace Pip.Core.Tests.Checkpoints;

public sealed class CheckpointWriterStaleTempTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private static LlamaConfig Config() => new()
    {
        Family = DecoderFamily.Llama,
        VocabSize = 16,
        HiddenSize = 8,
        IntermediateSize = 12,
        NumHiddenLayers = 1,
        NumAttentionHeads = 2,
        NumKeyValueHeads = 1,
        HeadDim = 4,
    };

    private static SafeTensorSource[] Weights() => [SafeTensorSource.FromBytes("model.layers.0.w", SafeTensorDType.BF16, [4, 4], new byte[32])];

    /// <summary>A pid no process has: past the kernel's pid limit.</summary>
    private const int DeadPid = int.MaxValue - 7;

    private string Leftover(string destination, string kind, int pid, string file = "model.safetensors")
    {
        var folder = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(destination)!, $".{System.IO.Path.GetFileName(destination)}.pip-{kind}-{pid}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        File.WriteAllText(System.IO.Path.Combine(folder, file), "half-written");
        return folder;
    }

    [Fact]
    public void Save_StaleTempFolderOfDeadWriter_IsRemoved()
    {
        var destination = _dir.File("out");
        var stale = Leftover(destination, "tmp", DeadPid);

        CheckpointWriter.Save(destination, Config(), Weights());

        Directory.Exists(stale).Should().BeFalse();
        Directory.EnumerateFileSystemEntries(_dir.Path).Should().Equal(destination);
    }

    [Fact]
    public void Save_TempFolderOfLiveProcessOrOtherName_IsKept()
    {
        var destination = _dir.File("out");
        var live = Leftover(destination, "tmp", Environment.ProcessId);
        var otherDestination = Leftover(_dir.File("other"), "tmp", DeadPid);
        var notOurs = _dir.File(".out.pip-tmp-notapid");
        Directory.CreateDirectory(notOurs);

        CheckpointWriter.Save(destination, Config(), Weights());

        Directory.Exists(live).Should().BeTrue();
        Directory.Exists(otherDestination).Should().BeTrue();
        Directory.Exists(notOurs).Should().BeTrue();
    }

    [Fact]
    public void Save_StaleOldFolderWhileDestinationIsMissing_IsPutBackAndNotOverwritten()
    {
        // A writer killed between moving the old checkpoint aside and moving the new one in: the old one is the user's data.
        var destination = _dir.File("out");
        var old = Leftover(destination, "old", DeadPid, "marker.txt");

        var act = () => CheckpointWriter.Save(destination, Config(), Weights());

        act.Should().Throw<IOException>().WithMessage("*exists and is not empty*");
        Directory.Exists(old).Should().BeFalse();
        File.ReadAllText(System.IO.Path.Combine(destination, "marker.txt")).Should().Be("half-written");
    }

    [Fact]
    public void ClearStaleTemporaryFolders_ReportsWhatItRemoved()
    {
        var destination = _dir.File("out");
        var stale = Leftover(destination, "tmp", DeadPid);
        Leftover(destination, "tmp", Environment.ProcessId);

        CheckpointWriter.ClearStaleTemporaryFolders(destination).Should().Equal(stale);
    }

    [Fact]
    public void Save_WriteExtraFiles_WritesIntoTheCheckpointWithoutStagingFolder()
    {
        var destination = _dir.File("out");
        string? seen = null;

        CheckpointWriter.Save(destination, Config(), Weights(), new CheckpointSaveOptions
        {
            WriteExtraFiles = (folder, _) =>
            {
                seen = folder;
                File.WriteAllText(System.IO.Path.Combine(folder, "report.json"), "{}");
            },
        });

        File.ReadAllText(System.IO.Path.Combine(destination, "report.json")).Should().Be("{}");
        seen.Should().NotBe(destination).And.Contain($".out.pip-tmp-{Environment.ProcessId}-");
        Directory.Exists(seen).Should().BeFalse();
    }
}
