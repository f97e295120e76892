// Shared by the samples that use the demo model's corpus (linked with <Compile Include="../Shared/DemoCorpus.cs" />),
// so that they all split it the same way as samples/Pip.TrainDemo, which trained the demo model.
internal static class DemoCorpus
{
    /// <summary>Every this-many-th non-empty line (0-based index i with i % 50 == 49) is held out.</summary>
    public const int HoldOutEvery = 50;

    /// <summary>The corpus files, read in this order.</summary>
    public static readonly string[] Files = ["brown.txt", "nlp-corpus.txt"];

    /// <summary>
    /// The trimmed non-empty lines of <see cref="Files"/> in <paramref name="corpusDir"/>, counted over both files in
    /// order: line i is held out (valid) when i % <see cref="HoldOutEvery"/> == <see cref="HoldOutEvery"/> − 1, else it is
    /// a training line.
    /// </summary>
    public static (List<string> Train, List<string> Valid) Split(string corpusDir)
    {
        var train = new List<string>();
        var valid = new List<string>();
        long lineNo = 0;
        foreach (var file in Files)
        {
            var path = Path.Combine(corpusDir, file);
            if (!File.Exists(path)) throw new FileNotFoundException($"Corpus file '{path}' does not exist; pass --corpus DIR.", path);
            foreach (var raw in File.ReadLines(path))
            {
                var line = raw.Trim();
                if (line.Length == 0) continue;
                (lineNo++ % HoldOutEvery == HoldOutEvery - 1 ? valid : train).Add(line);
            }
        }
        return (train, valid);
    }
}
