{
  "targets": [
    {
      "target_name": "release_memory",
      "sources": ["release_memory.cc"]
    }
  ]
}
