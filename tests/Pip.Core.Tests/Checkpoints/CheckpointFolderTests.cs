using Pip.Checkpoints;
using static Pip.Core.Tests.Checkpoints.SafeTensorsFixtures;

namespace Pip.Core.Tests.Checkpoints;

public sealed class CheckpointFolderTests : IDisposable
{
    private const string OneTensorHeader = """{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""";
    private const string OtherTensorHeader = """{"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""";

    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private void WriteIndex(string weightMapJson) =>
        File.WriteAllText(_dir.File(SafeTensorsIndex.FileName), $$"""{"metadata":{"total_size":8},"weight_map":{{weightMapJson}}}""");

    [Fact]
    public void Open_SingleFile_ExposesItsTensors()
    {
        Write(_dir, "model.safetensors", OneTensorHeader, [1, 2, 3, 4]);

        using var folder = CheckpointFolder.Open(_dir.Path);

        folder.IsSharded.Should().BeFalse();
        folder.ShardFiles.Should().Equal("model.safetensors");
        folder.TensorNames.Should().Equal("a");
        folder.GetFile("a").GetBytes("a").ToArray().Should().Equal(1, 2, 3, 4);
        folder.Contains("b").Should().BeFalse();
    }

    [Fact]
    public void Open_Sharded_OpensShardsLazily()
    {
        Write(_dir, "s1.safetensors", OneTensorHeader, [1, 2, 3, 4]);
        File.WriteAllBytes(_dir.File("s2.safetensors"), [0, 0]); // corrupt, but only read when asked for
        WriteIndex("""{"a":"s1.safetensors","b":"s2.safetensors"}""");

        using var folder = CheckpointFolder.Open(_dir.Path);

        folder.TensorNames.Should().Equal("a", "b");
        folder.GetInfo("a").Shape.Should().Equal(1);
        var act = () => folder.GetInfo("b");
        act.Should().Throw<CheckpointFormatException>().Which.FilePath.Should().EndWith("s2.safetensors");
    }

    [Fact]
    public void GetFile_ShardLacksIndexedTensor_ThrowsNamingShardAndTensor()
    {
        Write(_dir, "s1.safetensors", OneTensorHeader, [1, 2, 3, 4]);
        Write(_dir, "s2.safetensors", OtherTensorHeader, [1, 2, 3, 4]);
        WriteIndex("""{"a":"s2.safetensors"}""");

        using var folder = CheckpointFolder.Open(_dir.Path);
        var act = () => folder.GetFile("a");

        var ex = act.Should().Throw<CheckpointFormatException>().Which;
        ex.FilePath.Should().EndWith("s2.safetensors");
        ex.Field.Should().Be("a");
    }

    [Fact]
    public void Open_ShardEscapingFolder_Throws()
    {
        var inner = _dir.Sub("ckpt");
        Write(_dir, "outside.safetensors", OneTensorHeader, [1, 2, 3, 4]);
        File.WriteAllText(Path.Combine(inner, SafeTensorsIndex.FileName), """{"weight_map":{"a":"../outside.safetensors"}}""");

        var act = () => CheckpointFolder.Open(inner);

        var ex = act.Should().Throw<CheckpointFormatException>().Which;
        ex.Message.Should().Contain("outside the checkpoint folder").And.Contain(SafeTensorsIndex.FileName);
        ex.Field.Should().Be("a");
    }

    [Fact]
    public void Open_ShardWithAbsolutePath_Throws()
    {
        var absolute = Write(_dir, "abs.safetensors", OneTensorHeader, [1, 2, 3, 4]);
        var inner = _dir.Sub("ckpt");
        File.WriteAllText(Path.Combine(inner, SafeTensorsIndex.FileName),
            "{\"weight_map\":{\"a\":" + System.Text.Json.JsonSerializer.Serialize(absolute) + "}}");

        var act = () => CheckpointFolder.Open(inner);

        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain("absolute path");
    }

    [Fact]
    public void Open_MissingShards_ListsAllOfThem()
    {
        Write(_dir, "s1.safetensors", OneTensorHeader, [1, 2, 3, 4]);
        WriteIndex("""{"a":"s1.safetensors","b":"s2.safetensors","c":"s3.safetensors","d":"s3.safetensors"}""");

        var act = () => CheckpointFolder.Open(_dir.Path);

        act.Should().Throw<CheckpointFormatException>().Which.Message
            .Should().Contain("2 of 3 shard files are missing").And.Contain("'s2.safetensors'").And.Contain("'s3.safetensors'");
    }

    [Theory]
    [InlineData("""{"metadata":{}}""", "no 'weight_map'")]
    [InlineData("""{"weight_map":[]}""", "'weight_map' must be an object")]
    [InlineData("""{"weight_map":{"a":1}}""", "must be a file name")]
    [InlineData("""{"weight_map":{}}""", "'weight_map' is empty")]
    [InlineData("""{"weight_map":{"a":"s1.safetensors","a":"s1.safetensors"}}""", "twice")]
    [InlineData("""{"weight_map":""", "not valid JSON")]
    public void Open_MalformedIndex_Throws(string json, string fragment)
    {
        Write(_dir, "s1.safetensors", OneTensorHeader, [1, 2, 3, 4]);
        File.WriteAllText(_dir.File(SafeTensorsIndex.FileName), json);

        var act = () => CheckpointFolder.Open(_dir.Path);

        var ex = act.Should().Throw<CheckpointFormatException>().Which;
        ex.Message.Should().Contain(fragment);
        ex.FilePath.Should().EndWith(SafeTensorsIndex.FileName);
    }

    [Theory]
    [InlineData("pytorch_model.bin")]
    [InlineData("pytorch_model.bin.index.json")]
    [InlineData("pytorch_model-00001-of-00002.bin")]
    public void Open_OnlyPickledWeights_RefusesAndExplainsConversion(string fileName)
    {
        File.WriteAllBytes(_dir.File(fileName), [0x80, 0x02]);

        var act = () => CheckpointFolder.Open(_dir.Path);

        var ex = act.Should().Throw<CheckpointFormatException>().Which;
        ex.FilePath.Should().EndWith(fileName);
        ex.Message.Should().Contain("execute arbitrary code").And.Contain("safe_serialization=True");
    }

    [Fact]
    public void Open_NoWeights_Throws()
    {
        File.WriteAllText(_dir.File("config.json"), "{}");
        var act = () => CheckpointFolder.Open(_dir.Path);
        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain("neither 'model.safetensors'");
    }

    [Fact]
    public void Open_MissingFolder_ThrowsDirectoryNotFound()
    {
        var act = () => CheckpointFolder.Open(_dir.File("nope"));
        act.Should().Throw<DirectoryNotFoundException>();
    }

    [Fact]
    public void Dispose_ThenGetFile_ThrowsObjectDisposed()
    {
        Write(_dir, "s1.safetensors", OneTensorHeader, [1, 2, 3, 4]);
        WriteIndex("""{"a":"s1.safetensors"}""");
        var folder = CheckpointFolder.Open(_dir.Path);
        folder.Dispose();
        var act = () => folder.GetFile("a");
        act.Should().Throw<ObjectDisposedException>();
    }
}
